/** Lambda entry point `register`: S3 ObjectCreated events under `uploads/` become versions or rejections. */
import { createRegisterHandler } from '../transport/register-handler.js';
import { bootstrap } from '../wiring/bootstrap.js';
import { writableStoreFromConfig } from '../wiring/writable-store.js';

// The one function that writes: it brings the AWS SDK's S3 client; the serving functions read with a GET-only one.
const { runtime, observability } = await bootstrap('register', { store: writableStoreFromConfig });

/** The handler Lambda calls. */
export const handler = createRegisterHandler(runtime, observability);
