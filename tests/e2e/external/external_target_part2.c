/* A second file of external_target: a local function with the same name as
 * one in external_target.c, so that "helper" is ambiguous in .symtab. */
__attribute__((noinline, used)) static long helper(long x) { return x * 3; }

long triple(long x) { return helper(x); }
