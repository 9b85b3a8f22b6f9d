import { timingSafeEqual } from 'node:crypto';
import { createServer, type Server } from 'node:https';
import type { Socket } from 'node:net';

/**
 * An HTTPS server speaking the Splunk HTTP Event Collector protocol, for tests:
 * POST /services/collector/event with `Authorization: Splunk <token>` (else 401
 * `{"text":"Invalid token","code":4}`), a body of concatenated JSON events each with an
 * `event` member (else 400 code 6 / 12), answered `{"text":"Success","code":0}`.
 * It can be taken down (connections refused: the server closed) and brought back on
 * the same port, or made to answer 503 (`{"text":"Server is busy","code":9}`).
 */
export class HecReceiver {
  readonly events: Array<Record<string, unknown>> = [];
  /** Requests refused for their token, and the Authorization values they carried. */
  readonly unauthorized: string[] = [];
  requests = 0;
  busy = false;
  /** When set: how many more requests holding records are accepted; after that they get 503 (checkpoint-only requests pass). */
  recordBudget: number | undefined;
  /** 503 answers given. */
  busyAnswers = 0;
  port = 0;
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();

  constructor(
    private readonly token: string,
    private readonly tls: { cert: string; key: string },
  ) {}

  get url(): string {
    return `https://127.0.0.1:${this.port}`;
  }

  async up(): Promise<void> {
    if (this.server) return;
    const server = createServer({ ...this.tls, minVersion: 'TLSv1.2' }, (req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (c: string) => (body += c));
      req.on('end', () => {
        this.requests++;
        const answer = (status: number, text: string, code: number) => {
          res.writeHead(status, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ text, code }));
        };
        if (req.method !== 'POST' || req.url !== '/services/collector/event') return answer(404, 'The requested URL was not found on this server.', 404);
        const auth = Buffer.from(req.headers.authorization ?? '');
        const expected = Buffer.from(`Splunk ${this.token}`);
        if (auth.length !== expected.length || !timingSafeEqual(auth, expected)) {
          this.unauthorized.push(req.headers.authorization ?? '');
          return answer(401, 'Invalid token', 4);
        }
        const busy = () => (this.busyAnswers++, answer(503, 'Server is busy', 9));
        if (this.busy) return busy();
        let events: Array<Record<string, unknown>>;
        try {
          events = splitConcatenatedJson(body);
        } catch {
          return answer(400, 'Invalid data format', 6);
        }
        if (events.length === 0) return answer(400, 'No data', 5);
        if (events.some((e) => e.event === undefined || e.event === null || e.event === '')) return answer(400, 'Event field is required', 12);
        if (this.recordBudget !== undefined && events.some((e) => e.sourcetype === 'palisade:audit:record')) {
          if (this.recordBudget <= 0) return busy();
          this.recordBudget--;
        }
        this.events.push(...events);
        answer(200, 'Success', 0);
      });
    });
    server.on('connection', (s: Socket) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as { port: number }).port;
    this.server = server;
  }

  /** Close the server and every connection: the next requests are refused. */
  async down(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/** Concatenated JSON objects (HEC accepts them with or without whitespace between). */
export function splitConcatenatedJson(body: string): Array<Record<string, unknown>> {
  const out: Array<Record<string, unknown>> = [];
  let depth = 0;
  let start = -1;
  let inString = false;
  for (let i = 0; i < body.length; i++) {
    const c = body[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
      continue;
    }
    if (c === '"') inString = true;
    else if (c === '{') {
      if (depth === 0) start = i;
      depth++;
    } else if (c === '}') {
      depth--;
      if (depth === 0) out.push(JSON.parse(body.slice(start, i + 1)) as Record<string, unknown>);
      if (depth < 0) throw new Error('unbalanced');
    } else if (depth === 0 && !/\s/.test(c)) throw new Error(`unexpected ${c}`);
  }
  if (depth !== 0 || inString) throw new Error('truncated');
  return out;
}
