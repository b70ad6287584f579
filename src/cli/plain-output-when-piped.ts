/**
 * Imported by main.ts before anything else. citty decides whether to colour when it loads and
 * looks only at NO_COLOR, CI, TEST and TERM=dumb, so `voidrail --help | less` or `> file` got
 * escape codes. Output that is not a terminal gets none (NO_COLOR is what citty and consola read,
 * and what the dealer instances inherit); FORCE_COLOR keeps colour.
 */
const env = process.env;
if (env.NO_COLOR === undefined && env.FORCE_COLOR === undefined && !(process.stdout.isTTY && process.stderr.isTTY)) {
  env.NO_COLOR = "1";
}
