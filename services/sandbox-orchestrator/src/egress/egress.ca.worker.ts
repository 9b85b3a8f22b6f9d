import { parentPort } from 'node:worker_threads';
import { makeCaParts } from './egress.ca';

// The worker thread of `SandboxCa.create`: makes a CA per message and posts its parts back
// (the private key as a non-extractable CryptoKey, cloned; the certificate as DER).
parentPort?.on('message', (m: { id: number; label: string }) => {
  makeCaParts(m.label).then(
    (parts) => parentPort?.postMessage({ id: m.id, parts }),
    (error: unknown) => parentPort?.postMessage({ id: m.id, error: (error as Error).message }),
  );
});
