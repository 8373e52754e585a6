/** Runs the flag store conformance suite against the SQLite adapter on a real file. */
import { SqliteFlagStore } from '../../src/store/sqlite-flags.ts';
import { storeOnTempFile } from '../support/sqlite-store.ts';
import { flagStoreConformance } from './flag-store.conformance.ts';

flagStoreConformance('SQLite', () => storeOnTempFile((path) => new SqliteFlagStore({ path })));
