import cluster, { type Worker } from 'node:cluster';

/**
 * Word from one process of a service to its sibling processes: the workers of a cluster
 * (cluster.ts), through the primary. A change made through one worker (a tenant's
 * settings, say) drops the copies the other workers cache before its caller is answered,
 * so the next call sees it whichever worker takes it. Between separate instances of a
 * service (other hosts) it does not reach: there a cache's time bounds how stale a copy is.
 */

/** The messages, told apart from other IPC by `palisade`. */
interface Broadcast {
  palisade: 'sibling-broadcast';
  id: string;
  topic: string;
  payload: unknown;
}
interface Seen {
  palisade: 'sibling-seen';
  id: string;
}
interface Done {
  palisade: 'sibling-done';
  id: string;
  /** Workers that did not say they had run the handlers in time (given up on). */
  missed: number;
}

/** Asking every worker for an answer (`gather`): worker → primary → each other worker, their answers → the asker. */
interface Gather {
  palisade: 'sibling-gather';
  id: string;
  topic: string;
  payload: unknown;
}
interface Ask {
  palisade: 'sibling-ask';
  id: string;
  topic: string;
  payload: unknown;
}
interface Answer {
  palisade: 'sibling-answer';
  id: string;
  value?: unknown;
  error?: string;
}
/** One worker's answer as the asker gets it: its value, or why there is none. */
export interface WorkerAnswer {
  worker: number;
  value?: unknown;
  error?: string;
}
interface Gathered {
  palisade: 'sibling-gathered';
  id: string;
  answers: WorkerAnswer[];
}

const isMessage = <T extends { palisade: string }>(message: unknown, kind: T['palisade']): message is T =>
  typeof message === 'object' && message !== null && (message as { palisade?: unknown }).palisade === kind && typeof (message as { id?: unknown }).id === 'string';

/** What a worker answers when a sibling gathers the service's readiness (bootstrap registers it). */
export const READINESS_TOPIC = 'palisade:readiness';

/** How long the primary waits for every worker to run a broadcast's handlers before answering without the slow ones. */
export const SIBLING_TIMEOUT_MS = 2_000;

/** A worker's side of its IPC channel to the primary (the process itself in a cluster worker). */
export interface SiblingChannel {
  /** This worker's id (cluster.worker.id): how its own answer is named. */
  worker: number;
  send(message: Broadcast | Seen | Gather | Answer): void;
  onMessage(listener: (message: unknown) => void): void;
}

export type SiblingHandler = (payload: unknown) => void;
export type SiblingResponder = (payload: unknown) => unknown;

/**
 * A process's end: `on` registers what this process does on a topic, `broadcast` runs the
 * topic's handlers here at once and, in a cluster worker, resolves once every other live
 * worker has run them too (or was given up on: `missed` counts them; -1 when the primary
 * itself did not answer in time). Without a channel (one process, no cluster) only here.
 */
export class Siblings {
  private readonly handlers = new Map<string, SiblingHandler[]>();
  private readonly waiting = new Map<string, (missed: number) => void>();
  private readonly responders = new Map<string, SiblingResponder>();
  private readonly gathering = new Map<string, (answers: WorkerAnswer[]) => void>();
  private sent = 0;

  constructor(private readonly channel: SiblingChannel | undefined) {
    // answered from the start, handlers or not: the primary waits for every listening worker's word
    channel?.onMessage((message) => {
      if (isMessage<Broadcast>(message, 'sibling-broadcast')) {
        this.run(message.topic, message.payload);
        channel.send({ palisade: 'sibling-seen', id: message.id });
      } else if (isMessage<Done>(message, 'sibling-done')) {
        this.waiting.get(message.id)?.(message.missed);
        this.waiting.delete(message.id);
      } else if (isMessage<Ask>(message, 'sibling-ask')) {
        void this.respond(message.topic, message.payload).then((answer) => channel.send({ palisade: 'sibling-answer', id: message.id, ...answer }));
      } else if (isMessage<Gathered>(message, 'sibling-gathered')) {
        this.gathering.get(message.id)?.(message.answers);
        this.gathering.delete(message.id);
      }
    });
  }

  /** What this process answers when a worker gathers `topic` (one responder a topic). */
  answer(topic: string, responder: SiblingResponder): void {
    this.responders.set(topic, responder);
  }

  /**
   * Every listening worker's answer to `topic`, this one's first: the others through the
   * primary, which names a worker that did not answer within its bound (`error`). Alone
   * (no cluster): this process's answer only, as worker 0.
   */
  async gather(topic: string, payload: unknown): Promise<WorkerAnswer[]> {
    const own = { worker: this.channel?.worker ?? 0, ...(await this.respond(topic, payload)) };
    if (!this.channel) return [own];
    const id = String(++this.sent);
    const others = new Promise<WorkerAnswer[]>((resolve) => {
      const timer = setTimeout(() => (this.gathering.delete(id), resolve([])), SIBLING_TIMEOUT_MS + 3_000);
      this.gathering.set(id, (answers) => (clearTimeout(timer), resolve(answers)));
    });
    this.channel.send({ palisade: 'sibling-gather', id, topic, payload });
    return [own, ...(await others)];
  }

  private async respond(topic: string, payload: unknown): Promise<{ value?: unknown; error?: string }> {
    const responder = this.responders.get(topic);
    if (!responder) return { error: `no answer to ${topic} here` };
    try {
      return { value: await responder(payload) };
    } catch (error) {
      return { error: (error as Error).message };
    }
  }

  on(topic: string, handler: SiblingHandler): void {
    this.handlers.set(topic, [...(this.handlers.get(topic) ?? []), handler]);
  }

  async broadcast(topic: string, payload: unknown): Promise<{ missed: number }> {
    this.run(topic, payload);
    if (!this.channel) return { missed: 0 };
    const id = String(++this.sent);
    const done = new Promise<number>((resolve) => {
      // the primary answers within its own bound; this one only keeps a caller from waiting on a primary gone
      const timer = setTimeout(() => (this.waiting.delete(id), resolve(-1)), SIBLING_TIMEOUT_MS + 3_000);
      this.waiting.set(id, (missed) => (clearTimeout(timer), resolve(missed)));
    });
    this.channel.send({ palisade: 'sibling-broadcast', id, topic, payload });
    return { missed: await done };
  }

  private run(topic: string, payload: unknown): void {
    // a handler's failure must not keep the others (or the answer to the primary) from running
    for (const handler of this.handlers.get(topic) ?? []) {
      try {
        handler(payload);
      } catch {
        // a handler's failure is its own (the router's drop cached copies: one that threw leaves its copy to its cache time)
      }
    }
  }
}

let processSiblings: Siblings | undefined;

/** This process's siblings: through the primary in a cluster worker (made when the worker starts, see bootstrap), else this process alone. */
export function siblings(): Siblings {
  processSiblings ??= new Siblings(
    cluster.isWorker && process.send
      ? {
          worker: cluster.worker!.id,
          send: (message) => void process.send!(message),
          onMessage: (listener) => void process.on('message', listener),
        }
      : undefined,
  );
  return processSiblings;
}

/**
 * The primary's part (runPrimary): what a worker broadcasts is passed to the other
 * `workers()` (those that listen: one still starting has served nothing, so holds no copy
 * made before the change), and the sender told once they ran it, or died, or the time is up;
 * what a worker gathers is asked of the same workers, and their answers passed back.
 */
export function relayBetweenWorkers(workers: () => Worker[], timeoutMs = SIBLING_TIMEOUT_MS): void {
  const pending = new Map<string, { from: Worker; id: string; left: Set<number>; timer: NodeJS.Timeout }>();
  const settle = (key: string) => {
    const p = pending.get(key);
    if (!p) return;
    pending.delete(key);
    clearTimeout(p.timer);
    if (p.from.isConnected()) p.from.send({ palisade: 'sibling-done', id: p.id, missed: p.left.size } satisfies Done);
  };
  cluster.on('message', (worker: Worker, message: unknown) => {
    if (isMessage<Seen>(message, 'sibling-seen')) {
      const p = pending.get(message.id);
      if (p?.left.delete(worker.id) && p.left.size === 0) settle(message.id);
      return;
    }
    if (!isMessage<Broadcast>(message, 'sibling-broadcast') || typeof message.topic !== 'string') return;
    const others = workers().filter((w) => w.id !== worker.id && w.isConnected());
    // keyed by sender and its id: two workers' ids may be equal; forwarded under the key, so `seen` names it
    const key = `${worker.id}\n${message.id}`;
    pending.set(key, { from: worker, id: message.id, left: new Set(others.map((w) => w.id)), timer: setTimeout(() => settle(key), timeoutMs) });
    for (const w of others) w.send({ palisade: 'sibling-broadcast', id: key, topic: message.topic, payload: message.payload } satisfies Broadcast);
    if (others.length === 0) settle(key);
  });
  // gather: each other listening worker's answer passed back to the asker, a silent one named
  const asked = new Map<string, { from: Worker; id: string; left: Set<number>; answers: WorkerAnswer[]; timer: NodeJS.Timeout }>();
  const finish = (key: string) => {
    const g = asked.get(key);
    if (!g) return;
    asked.delete(key);
    clearTimeout(g.timer);
    for (const worker of g.left) g.answers.push({ worker, error: `worker ${worker} did not answer within ${timeoutMs} ms` });
    if (g.from.isConnected()) g.from.send({ palisade: 'sibling-gathered', id: g.id, answers: g.answers } satisfies Gathered);
  };
  const answered = (key: string, worker: number, answer: { value?: unknown; error?: string }) => {
    const g = asked.get(key);
    if (!g?.left.delete(worker)) return;
    g.answers.push({ worker, ...answer });
    if (g.left.size === 0) finish(key);
  };
  cluster.on('message', (worker: Worker, message: unknown) => {
    if (isMessage<Answer>(message, 'sibling-answer')) return answered(message.id, worker.id, { value: message.value, ...(message.error === undefined ? {} : { error: message.error }) });
    if (!isMessage<Gather>(message, 'sibling-gather') || typeof message.topic !== 'string') return;
    const others = workers().filter((w) => w.id !== worker.id && w.isConnected());
    const key = `${worker.id}\n${message.id}`;
    asked.set(key, { from: worker, id: message.id, left: new Set(others.map((w) => w.id)), answers: [], timer: setTimeout(() => finish(key), timeoutMs) });
    for (const w of others) w.send({ palisade: 'sibling-ask', id: key, topic: message.topic, payload: message.payload } satisfies Ask);
    if (others.length === 0) finish(key);
  });

  // a worker that dies is not waited for
  cluster.on('exit', (worker: Worker) => {
    for (const [key, p] of pending) if (p.left.delete(worker.id) && p.left.size === 0) settle(key);
    for (const [key, g] of asked) if (g.left.has(worker.id)) answered(key, worker.id, { error: `worker ${worker.id} exited` });
  });
}
