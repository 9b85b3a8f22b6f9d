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
 * itself did not answer in time). `answer` and `gather` are the same with a value from each.
 * Without a channel (one process, no cluster) only here.
 */
export class Siblings {
  private readonly handlers = new Map<string, SiblingHandler[]>();
  private readonly responders = new Map<string, SiblingResponder>();
  /** Requests sent to the primary, by id: each waits for its one reply. */
  private readonly waiting = new Map<string, (reply: Done | Gathered) => void>();
  private sent = 0;

  constructor(private readonly channel: SiblingChannel | undefined) {
    // answered from the start, handlers or not: the primary waits for every listening worker's word
    channel?.onMessage((message) => {
      if (isMessage<Broadcast>(message, 'sibling-broadcast')) {
        this.run(message.topic, message.payload);
        channel.send({ palisade: 'sibling-seen', id: message.id });
      } else if (isMessage<Ask>(message, 'sibling-ask')) {
        void this.respond(message.topic, message.payload).then((answer) => channel.send({ palisade: 'sibling-answer', id: message.id, ...answer }));
      } else if (isMessage<Done>(message, 'sibling-done') || isMessage<Gathered>(message, 'sibling-gathered')) {
        this.waiting.get(message.id)?.(message);
        this.waiting.delete(message.id);
      }
    });
  }

  on(topic: string, handler: SiblingHandler): void {
    this.handlers.set(topic, [...(this.handlers.get(topic) ?? []), handler]);
  }

  /** What this process answers when a worker gathers `topic` (one responder a topic). */
  answer(topic: string, responder: SiblingResponder): void {
    this.responders.set(topic, responder);
  }

  async broadcast(topic: string, payload: unknown): Promise<{ missed: number }> {
    this.run(topic, payload);
    if (!this.channel) return { missed: 0 };
    const reply = await this.request((id) => ({ palisade: 'sibling-broadcast', id, topic, payload }));
    return { missed: reply?.palisade === 'sibling-done' ? reply.missed : -1 };
  }

  /**
   * Every listening worker's answer to `topic`, this one's first: the others through the
   * primary, which names a worker that did not answer within its bound (`error`). Alone
   * (no cluster): this process's answer only, as worker 0.
   */
  async gather(topic: string, payload: unknown): Promise<WorkerAnswer[]> {
    const own = { worker: this.channel?.worker ?? 0, ...(await this.respond(topic, payload)) };
    if (!this.channel) return [own];
    const reply = await this.request((id) => ({ palisade: 'sibling-gather', id, topic, payload }));
    return [own, ...(reply?.palisade === 'sibling-gathered' ? reply.answers : [])];
  }

  /** One request to the primary and its reply; undefined when none came (the primary answers within its own bound: this only keeps a caller from waiting on a primary gone). */
  private request(message: (id: string) => Broadcast | Gather): Promise<Done | Gathered | undefined> {
    const id = String(++this.sent);
    return new Promise((resolve) => {
      const timer = setTimeout(() => (this.waiting.delete(id), resolve(undefined)), SIBLING_TIMEOUT_MS + 3_000);
      this.waiting.set(id, (reply) => (clearTimeout(timer), resolve(reply)));
      this.channel!.send(message(id));
    });
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

  private async respond(topic: string, payload: unknown): Promise<{ value?: unknown; error?: string }> {
    const responder = this.responders.get(topic);
    if (!responder) return { error: `no answer to ${topic} here` };
    try {
      return { value: await responder(payload) };
    } catch (error) {
      return { error: (error as Error).message };
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
 * The primary's part (runPrimary): what a worker broadcasts or gathers is passed to the
 * other `workers()` (those that listen: one still starting has served nothing, so holds no
 * copy made before a change), and the sender given their replies once all are in, or the
 * time is up (a broadcast: how many were silent; a gather: their answers, the silent ones
 * named). A worker that dies is not waited for.
 */
export function relayBetweenWorkers(workers: () => Worker[], timeoutMs = SIBLING_TIMEOUT_MS): void {
  // keyed by sender and its id (two workers' ids may be equal); forwarded under the key, so a reply names it
  const rounds = new Map<string, { from: Worker; id: string; gather: boolean; left: Set<number>; answers: WorkerAnswer[]; timer: NodeJS.Timeout }>();
  const finish = (key: string) => {
    const round = rounds.get(key);
    if (!round) return;
    rounds.delete(key);
    clearTimeout(round.timer);
    if (!round.from.isConnected()) return;
    if (!round.gather) return round.from.send({ palisade: 'sibling-done', id: round.id, missed: round.left.size } satisfies Done);
    for (const worker of round.left) round.answers.push({ worker, error: `worker ${worker} did not answer within ${timeoutMs} ms` });
    round.from.send({ palisade: 'sibling-gathered', id: round.id, answers: round.answers } satisfies Gathered);
  };
  const replied = (key: string, worker: number, answer?: { value?: unknown; error?: string }) => {
    const round = rounds.get(key);
    if (!round?.left.delete(worker)) return;
    if (answer) round.answers.push({ worker, ...answer });
    if (round.left.size === 0) finish(key);
  };
  const start = (from: Worker, { id, topic, payload }: Broadcast | Gather, gather: boolean) => {
    const others = workers().filter((w) => w.id !== from.id && w.isConnected());
    const key = `${from.id}\n${id}`;
    rounds.set(key, { from, id, gather, left: new Set(others.map((w) => w.id)), answers: [], timer: setTimeout(() => finish(key), timeoutMs) });
    for (const w of others) w.send(gather ? ({ palisade: 'sibling-ask', id: key, topic, payload } satisfies Ask) : ({ palisade: 'sibling-broadcast', id: key, topic, payload } satisfies Broadcast));
    if (others.length === 0) finish(key);
  };
  cluster.on('message', (worker: Worker, message: unknown) => {
    if (isMessage<Seen>(message, 'sibling-seen')) replied(message.id, worker.id);
    else if (isMessage<Answer>(message, 'sibling-answer')) replied(message.id, worker.id, { value: message.value, ...(message.error === undefined ? {} : { error: message.error }) });
    else if (isMessage<Broadcast>(message, 'sibling-broadcast') && typeof message.topic === 'string') start(worker, message, false);
    else if (isMessage<Gather>(message, 'sibling-gather') && typeof message.topic === 'string') start(worker, message, true);
  });
  cluster.on('exit', (worker: Worker) => {
    for (const [key, round] of rounds) if (round.left.has(worker.id)) replied(key, worker.id, round.gather ? { error: `worker ${worker.id} exited` } : undefined);
  });
}
