// The bundler inlines `package.json`; `lib/` sits beside `src/`, so the
// relative path holds for the compiled module as well.
import packageJson from '../package.json';

/**
 * Version of this frontend package, taken from `package.json` at build time.
 */
export const FRONTEND_VERSION: string = packageJson.version;
