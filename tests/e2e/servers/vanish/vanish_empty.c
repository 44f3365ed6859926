/* libvanish without vanish(): what the lazy server finds at run time (via
 * LD_LIBRARY_PATH).  Lazy binding lets it start; its PLT slot for vanish()
 * can never be resolved, so the snapshot must refuse. */
int keep(int x) { return x * 2; }
