// The version is package.json's, in development runs (tsx) as in the
// executable: esbuild puts this one field of package.json into the bundle.
import { version } from '../package.json';

export const VERSION: string = version;
