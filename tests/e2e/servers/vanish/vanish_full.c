/* libvanish with vanish(): what the lazy server is linked against. */
int vanish(int x) { return x + 1; }
int keep(int x) { return x * 2; }
