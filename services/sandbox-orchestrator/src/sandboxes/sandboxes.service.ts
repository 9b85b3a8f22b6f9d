import { randomUUID } from 'node:crypto';
import { clip, ConcurrencyError, newEventId, PalisadeError, type Actor, type EventEnvelope, type EventFactoryContext, type Principal } from '@palisade/contracts';
import { CommandHandler, envelopeOf, streamName, type CommandResult, type EventStore, type Transaction } from '@palisade/eventsourcing';
import type { AuthorizeDecision, PolicyClient } from '@palisade/policy-client';
import { askPolicy, type PolicyAsk } from '../policy';
import type { ExecRequest, ExecResult, SandboxRuntime } from '../runtime/runtime.port';
import type { SandboxFiles } from '../runtime/workspace-files';
import type { SandboxTokens } from './sandbox-tokens';
import type { SessionRow, SessionsRepository } from '../sessions/sessions.repository';
import type { ExecutionTokens } from '../egress/egress.execution-tokens';
import type { Caller } from '../sessions/sessions.service';
import { sandboxDecider, sandboxStateOf, type ExecutionMetering, type SandboxCommand, type SandboxState } from './sandboxes.decider';
import { executionApprovalParameters } from './sandboxes.approvals';
import { LiveOutput, type OutputChunk } from './sandboxes.live-output';
import type { ExecutionBilling } from './sandboxes.billing';
import type { ExecutionReason, ExecutionUsage, SandboxEvent, StopReason } from './sandboxes.events';
import { cpuLimitNow, type CpuGrant } from './sandboxes.cpu-grants';
import { billedSubjectOf, meteredQuantities, worstCaseUsage } from './sandboxes.metering';
import type { ExecutionRow, SandboxesRepository, SandboxRow } from './sandboxes.repository';
import { SANDBOX_TEMPLATES } from './sandboxes.templates';

/** The tool an execution is, for the policy service's allowlists (`invoke` on resource type `tool`). */
export const EXECUTE_TOOL = 'execute_code';
const SESSION_RESOURCE = 'session';
const TOOL_RESOURCE = 'tool';
const SELF: Actor = { type: 'service', id: 'sandbox-orchestrator' };
const notFound = () => new PalisadeError('not_found', 'sandbox not found');

export type ExecInput = { timeoutMs?: number; env?: Record<string, string>; approvalToken?: string } & (
  | { command: string[]; stdin?: string }
  | { language: 'python' | 'node' | 'sh'; code: string }
);

export interface ExecOutputListener {
  /** The execution's id, once it is recorded as started (before any output): what a client reattaches with. */
  onStart?: (executionId: string) => void;
  onStdout?: (chunk: Buffer) => void;
  onStderr?: (chunk: Buffer) => void;
}

export interface SandboxView {
  id: string;
  sessionId: string;
  template: string;
  limits: SandboxRow['limits'];
  status: SandboxRow['status'];
  runningExecution?: string;
  createdAt: string;
  lastActivityAt: string;
  /** The lifetime limit: the sandbox is stopped then (reason `lifetime`). */
  expiresAt?: string;
  etag: number;
}

export interface ExecutionView {
  id: string;
  sandboxId: string;
  program: string;
  status: 'running' | 'finished';
  reason?: ExecutionReason;
  exitCode: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  stdoutTruncated: boolean;
  stderrTruncated: boolean;
  usage?: ExecutionUsage;
  startedAt: string;
  finishedAt?: string;
}

export interface SandboxesSettings {
  /** Bytes of stdout and of stderr kept per execution. */
  outputCapBytes: number;
  /** A ready sandbox with nothing run for this long is stopped. */
  idleStopMs: number;
  /** This orchestrator's instance: the sandboxes its runtime holds. */
  instance: string;
  /** A sandbox's lifetime limit: stopped this long after its creation, whatever it runs. */
  lifetimeMs: number;
  /** Per tenant: sandboxes ready at once, and CPU-seconds of executions within a sliding window of whole hours. */
  quotas: { maxSandboxes: number; cpuSeconds: number; cpuWindowMs: number };
  /** The largest file uploaded or downloaded at once. */
  fileMaxBytes: number;
}

export interface SandboxesServiceDependencies {
  store: EventStore;
  repo: Pick<SandboxesRepository, 'sandbox' | 'sandboxesOf' | 'liveSandboxes' | 'idleSince' | 'expiredBy' | 'readyCount' | 'readyCountLocked' | 'lockedSandbox' | 'claimCpu' | 'releaseCpu' | 'releaseCpuOf' | 'holdBoot' | 'liveElsewhere' | 'execution' | 'storeOutput' | 'projection' | 'commit'>;
  sessions: Pick<SessionsRepository, 'session'>;
  policy: () => Pick<PolicyClient, 'authorize'> | undefined;
  runtime: SandboxRuntime;
  /** Holds the caller's token for the egress proxy's lease grants while its execution runs (absent: no lease can be granted). */
  executionTokens?: Pick<ExecutionTokens, 'hold'>;
  /** The workspace's files, from the host (upload and download). */
  files?: SandboxFiles;
  /** Sandbox-scoped tokens (minted at creation, verified at the sandbox's own callbacks). */
  tokens?: Pick<SandboxTokens, 'mint' | 'verify'>;
  /** A tenant's own quotas (the tenant quotas API); absent: the settings' for every tenant. */
  tenantQuotas?: (tenantId: string) => Promise<{ maxSandboxes: number; cpuSeconds: number }>;
  /** billing's ledger: the worst case held before an execution, its actual priced after (absent: nothing is held, `actualMicros` 0). */
  billing?: ExecutionBilling;
  settings: SandboxesSettings;
  eventContext: EventFactoryContext;
  now?: () => Date;
  /** This process, among others under the same instance name (its CPU grants carry it); random when absent. */
  boot?: string;
  /** Failures that are not the caller's (a hold not released: billing expires it). */
  warn?: (details: Record<string, unknown>, message: string) => void;
}

const INTERPRETERS: Record<'python' | 'node' | 'sh', string[]> = { python: ['/usr/bin/python3', '-'], node: ['/usr/bin/node', '-'], sh: ['/bin/sh', '-s'] };

/**
 * Sandboxes of a session (stream `sandbox-<id>`): create from a template, exec (a
 * command with its stdin, or code on an interpreter's stdin), stop, delete; idle stop;
 * at start, adoption of what the runtime still holds and removal of the rest. Before
 * anything runs, the policy service decides, with the caller's own token for an agent:
 * `write` on the session (its roles; an agent ∩ its user) and `invoke` on the tool
 * `execute_code` (the allowlists). A refusal is a 403 naming the rule and an
 * `exec_refused` event (audited).
 */
export class SandboxesService {
  private readonly handler: CommandHandler<SandboxState, SandboxCommand, SandboxEvent>;
  private readonly now: () => Date;
  private readonly boot: string;
  /** Releases the mark that this process is alive (`close`). */
  private unholdBoot?: () => Promise<void>;
  private readonly running = new Map<string, () => void>();
  /** The output of the executions running on this instance, by execution id, for clients that reattach. */
  private readonly live = new Map<string, LiveOutput>();
  /**
   * Each sandbox's session row as last read here (a sandbox never changes session), so that
   * both rows are read at once, and an execution's decisions asked meanwhile.
   */
  private readonly sessionOf = new Map<string, SessionRow>();

  constructor(private readonly d: SandboxesServiceDependencies) {
    this.handler = new CommandHandler(d.store, sandboxDecider, { eventContext: d.eventContext, projections: [d.repo.projection], tenantScoped: true });
    this.now = d.now ?? (() => new Date());
    this.boot = d.boot ?? randomUUID();
  }

  async create(caller: Caller, sessionId: string, template: string): Promise<SandboxView & { sandboxToken?: string }> {
    const limits = SANDBOX_TEMPLATES[template];
    if (!limits) throw new PalisadeError('validation', `template: one of ${Object.keys(SANDBOX_TEMPLATES).join(', ')}`);
    const tenantId = caller.principal.tenantId;
    // asked at once: the session, the tenant's quotas and ready sandboxes; then read and write in one policy request
    const counted = settle(Promise.all([this.quotasOf(tenantId), this.d.repo.readyCount(tenantId)]));
    const session = await this.d.sessions.session(tenantId, sessionId);
    if (!session) throw new PalisadeError('not_found', 'session not found');
    const [read, write] = await this.ask(caller, [
      { type: SESSION_RESOURCE, action: 'read', session },
      { type: SESSION_RESOURCE, action: 'write', session },
    ]);
    if (read.decision !== 'allow') throw new PalisadeError('not_found', 'session not found');
    if (session.status !== 'active') throw new PalisadeError('illegal_state', 'session is archived');
    if (write.decision !== 'allow') throw refusalError('write', write);
    const [{ maxSandboxes }, ready] = await counted.value();
    if (ready >= maxSandboxes) throw sandboxQuotaError(maxSandboxes);
    const sandboxId = newEventId();
    const expiresAt = new Date(this.now().getTime() + this.d.settings.lifetimeMs).toISOString();
    await this.d.runtime.create(sandboxId, limits);
    let created: CommandResult<SandboxState>;
    try {
      created = await this.handler.handle(
        streamName('sandbox', sandboxId),
        this.command(caller.principal, { type: 'create', data: { sandboxId, sessionId, template, limits, instance: this.d.settings.instance, expiresAt } }),
        {
          expectedVersion: 0,
          // the count again, serialised per tenant, the new sandbox included: concurrent creations never both take the last place
          alsoInTransaction: async (tx) => {
            if ((await this.d.repo.readyCountLocked(tx, tenantId)) > maxSandboxes) throw sandboxQuotaError(maxSandboxes);
          },
        },
      );
    } catch (error) {
      await this.d.runtime.remove(sandboxId);
      throw error;
    }
    // the row as the projection wrote it (not read back)
    const at = created.events[0].occurredAt;
    const view = viewOf({ tenantId, sandboxId, sessionId, template, instance: this.d.settings.instance, limits, status: 'ready', version: created.version, createdAt: at, updatedAt: at, lastActivityAt: at, expiresAt });
    // the sandbox-scoped token: shown here only, never stored or recorded
    return this.d.tokens ? { ...view, sandboxToken: await this.d.tokens.mint(tenantId, sandboxId, new Date(expiresAt), this.now()) } : view;
  }

  /** A new sandbox-scoped token (after a restart of the orchestrator, whose signing key is in memory only). Needs write on the session. */
  async mintToken(caller: Caller, sandboxId: string): Promise<{ sandboxToken: string; expiresAt: string }> {
    const row = await this.writable(caller, sandboxId);
    if (!this.d.tokens) throw new PalisadeError('unavailable', 'sandbox tokens are not issued here');
    if (row.status !== 'ready') throw new PalisadeError('illegal_state', 'sandbox is stopped');
    const expiresAt = row.expiresAt ? new Date(row.expiresAt) : new Date(this.now().getTime() + this.d.settings.lifetimeMs);
    return { sandboxToken: await this.d.tokens.mint(row.tenantId, sandboxId, expiresAt, this.now()), expiresAt: expiresAt.toISOString() };
  }

  /** Writes a file into the workspace (policy: as an execution), audited by path and size. */
  async upload(caller: Caller, sandboxId: string, path: string, content: Buffer): Promise<{ path: string; bytes: number }> {
    const row = await this.executable(caller, sandboxId);
    return this.transfer(row, { type: caller.principal.type, id: caller.principal.id }, 'caller', 'upload', path, content);
  }

  /** Reads a file of the workspace (policy: as an execution), audited by path and size. */
  async download(caller: Caller, sandboxId: string, path: string): Promise<Buffer> {
    const row = await this.executable(caller, sandboxId);
    return this.transfer(row, { type: caller.principal.type, id: caller.principal.id }, 'caller', 'download', path);
  }

  /** The largest file a transfer takes (the body read is cut there). */
  fileLimit(): number {
    return this.d.settings.fileMaxBytes;
  }

  /** The sandbox a sandbox-scoped token opens: its own, while it is ready (the token expires with it). */
  async self(token: string): Promise<SandboxView> {
    return viewOf(await this.ownSandbox(token));
  }

  async selfUpload(token: string, path: string, content: Buffer): Promise<{ path: string; bytes: number }> {
    return this.transfer(await this.ownSandbox(token), SELF, 'sandbox-token', 'upload', path, content);
  }

  async selfDownload(token: string, path: string): Promise<Buffer> {
    return this.transfer(await this.ownSandbox(token), SELF, 'sandbox-token', 'download', path);
  }

  private async ownSandbox(token: string): Promise<SandboxRow> {
    if (!this.d.tokens) throw new PalisadeError('unauthenticated', 'sandbox tokens are not accepted here');
    const { tenantId, sandboxId } = await this.d.tokens.verify(token);
    const row = await this.d.repo.sandbox(tenantId, sandboxId);
    if (!row || row.status !== 'ready') throw new PalisadeError('unauthenticated', 'sandbox token: its sandbox is stopped or gone');
    this.local(row);
    return row;
  }

  /** The sandbox, if the caller may run things in it (the same decisions as an execution; a refusal is a 403 and an exec_refused event). */
  private async executable(caller: Caller, sandboxId: string): Promise<SandboxRow> {
    const { row, session } = await this.sandboxAndSession(caller, sandboxId);
    // the decisions before the instance: a caller who may not read the sandbox learns neither that it exists nor where
    const refused = await this.refusal(caller, session);
    if (refused) {
      await this.handle(caller.principal.tenantId, sandboxId, this.command(caller.principal, { type: 'refuse', data: { action: refused.action, rule: refused.decision.rule } }));
      throw refusalError(refused.action, refused.decision);
    }
    this.local(row);
    return row;
  }

  private async transfer(row: SandboxRow, actor: Actor, via: 'caller' | 'sandbox-token', direction: 'upload', path: string, content: Buffer): Promise<{ path: string; bytes: number }>;
  private async transfer(row: SandboxRow, actor: Actor, via: 'caller' | 'sandbox-token', direction: 'download', path: string): Promise<Buffer>;
  private async transfer(row: SandboxRow, actor: Actor, via: 'caller' | 'sandbox-token', direction: 'upload' | 'download', path: string, content?: Buffer): Promise<{ path: string; bytes: number } | Buffer> {
    if (!this.d.files) throw new PalisadeError('unavailable', 'files are not served here');
    if (row.status !== 'ready') throw new PalisadeError('illegal_state', 'sandbox is stopped');
    if (content && content.length > this.d.settings.fileMaxBytes) throw new PalisadeError('payload_too_large', `a file of at most ${this.d.settings.fileMaxBytes} bytes`);
    const data = direction === 'upload' ? (await this.d.files.write(row.sandboxId, path, content!), content!) : await this.d.files.read(row.sandboxId, path, this.d.settings.fileMaxBytes);
    const shown = path.startsWith('/') ? path : `/workspace/${path}`;
    await this.handle(row.tenantId, row.sandboxId, {
      type: 'transfer',
      data: { direction, path: clip(shown, 1100), bytes: data.length, via },
      metadata: { tenantId: row.tenantId, actor, now: this.now() },
    });
    return direction === 'upload' ? { path: shown, bytes: data.length } : data;
  }

  async get(caller: Caller, sandboxId: string): Promise<SandboxView> {
    const { row } = await this.readable(caller, sandboxId);
    return viewOf(row);
  }

  async list(caller: Caller, sessionId: string): Promise<SandboxView[]> {
    await this.session(caller, sessionId);
    return (await this.d.repo.sandboxesOf(caller.principal.tenantId, sessionId)).map(viewOf);
  }

  async execution(caller: Caller, sandboxId: string, executionId: string): Promise<ExecutionView> {
    await this.readable(caller, sandboxId);
    const row = await this.d.repo.execution(caller.principal.tenantId, sandboxId, executionId);
    if (!row) throw new PalisadeError('not_found', 'execution not found');
    return executionViewOf(row);
  }

  /**
   * Runs one program to its end (or timeout) and returns its outcome; `output` sees stdout
   * and stderr as they come (within the caps). The sandbox and its session are read at once,
   * the policy's three decisions asked in one request, and only then, for a caller the
   * policy allows (a refused one causes no other work), the tenant's CPU used, its quotas
   * (cached) and the worst case's price, at once; judged in order: 404, 403, 409, 429. The
   * runtime prepares the program meanwhile but runs it only once billing holds the worst
   * case and `exec_started` is committed (`startWhen`).
   */
  async exec(caller: Caller, sandboxId: string, input: ExecInput, output: ExecOutputListener = {}): Promise<ExecutionView> {
    const { principal } = caller;
    const parameters = executionApprovalParameters(sandboxId, input);
    // the decisions asked at once with the rows when this sandbox's session was read here before; they stand only if
    // the session read now is the one they were asked about (else asked again): what is asked, and of whom, is unchanged
    const seen = this.sessionOf.get(sandboxId);
    const early = seen?.tenantId === principal.tenantId ? { session: seen, decisions: settle(this.ask(caller, this.execAsks(seen, parameters))) } : undefined;
    const { row, session } = await this.sandboxAndSession(caller, sandboxId);
    const asked = early && policyViewOf(early.session) === policyViewOf(session) ? early.decisions : undefined;
    // the sandbox's lifetime is a hard wall-clock limit too: no execution outlives it
    const left = row.expiresAt ? Date.parse(row.expiresAt) - this.now().getTime() : Number.POSITIVE_INFINITY;
    const timeoutMs = Math.max(1, Math.min(input.timeoutMs ?? row.limits.timeoutMs, left));
    // a critical tool's approval is bound to exactly this input; its token is redeemed by the policy service, once
    // the decisions before the instance (a non-reader: 404, never where the sandbox lives); an approval is not
    // redeemed for a sandbox this instance cannot run (`local` before the token is spent)
    const refused = await this.refusal(caller, session, { parameters, token: input.approvalToken }, () => this.local(row), asked);
    if (refused) {
      await this.handle(principal.tenantId, sandboxId, this.command(principal, { type: 'refuse', data: { action: refused.action, rule: refused.decision.rule } }));
      throw refusalError(refused.action, refused.decision, refused.approval);
    }
    this.local(row);
    if (row.status === 'stopped') throw new PalisadeError('illegal_state', 'sandbox is stopped'); // before the quota and the hold (the decider says so again)
    const executionId = newEventId();
    const granted = await this.grantCpu(principal.tenantId, executionId, row, timeoutMs);
    return this.run(caller, row, executionId, input, output, timeoutMs, granted);
  }

  /**
   * What the execution may spend of its tenant's CPU-seconds (429 when nothing is left),
   * claimed in PostgreSQL for every instance at once: the quota less what is used and what
   * the tenant's running executions hold, on any instance, at most its own worst case (CPU
   * quota × timeout); and billing's quote of that worst case, asked meanwhile. The grant
   * leaves with the execution's end (its usage, in one commit), or is released here if
   * nothing starts.
   */
  private async grantCpu(tenantId: string, executionId: string, row: SandboxRow, timeoutMs: number): Promise<CpuGrant & { heldMicros: bigint | undefined }> {
    const price = settle(this.worstCasePrice(tenantId, row, timeoutMs));
    const { cpuSeconds: quota } = await this.quotasOf(tenantId);
    const now = this.now().getTime();
    const claimed = await this.d.repo.claimCpu({
      tenantId,
      executionId,
      instance: this.d.settings.instance,
      boot: this.boot,
      quota,
      since: new Date(now - this.d.settings.quotas.cpuWindowMs),
      want: worstCaseUsage(row.limits, timeoutMs).cpuSeconds,
      // the execution cannot outlive its timeout; its end is committed well within this (added to PostgreSQL's clock, not ours)
      ttlSeconds: (timeoutMs + GRANT_GRACE_MS) / 1000,
    });
    if (claimed.granted === undefined) throw this.cpuQuotaError(claimed.used, claimed.held, quota);
    try {
      return { limit: claimed.granted, quota, heldMicros: await price.value() };
    } catch (error) {
      await this.releaseCpu(tenantId, executionId);
      throw error;
    }
  }

  /** The grant of an execution that did not start (a failure here leaves it to its expiry: fail closed). */
  private async releaseCpu(tenantId: string, executionId: string): Promise<void> {
    await this.d.repo.releaseCpu(tenantId, executionId).catch((error: unknown) => {
      this.d.warn?.({ executionId, code: (error as PalisadeError).code }, 'cpu grant not released: it expires');
    });
  }

  private async run(
    caller: Caller,
    row: SandboxRow,
    executionId: string,
    input: ExecInput,
    output: ExecOutputListener,
    timeoutMs: number,
    grant: CpuGrant & { heldMicros: bigint | undefined },
  ): Promise<ExecutionView> {
    const { limit, heldMicros } = grant;
    const { principal } = caller;
    const { sandboxId } = row;
    // the output goes to the caller and to whoever reattaches by execution id, while it runs
    const live = new LiveOutput();
    const listeners = {
      onStdout: (chunk: Buffer) => {
        live.push('stdout', chunk);
        output.onStdout?.(chunk);
      },
      onStderr: (chunk: Buffer) => {
        live.push('stderr', chunk);
        output.onStderr?.(chunk);
      },
    };
    let release: (() => void) | undefined;
    // billing holds the worst case first (a budget without room: 429 naming it), under the execution id; then exec_started
    const admitted = (async () => {
      if (heldMicros !== undefined) await this.d.billing!.reserve(principal, { executionId, amountMicros: heldMicros, ttlMs: timeoutMs + 60_000 });
      const program = 'command' in input ? input.command[0] : input.language;
      try {
        await this.handleOn(row, this.command(principal, { type: 'start', data: { executionId, kind: 'command' in input ? 'command' : 'code', program: clip(program, 200), timeoutMs } }));
      } catch (error) {
        if (heldMicros !== undefined) await this.releaseHold(principal.tenantId, executionId);
        throw error;
      }
      this.live.set(executionId, live);
      output.onStart?.(executionId);
      // the caller's token, for the egress proxy's lease grants, for this execution only
      release = caller.token ? this.d.executionTokens?.hold(sandboxId, executionId, caller.token, principal.type === 'agent' ? principal.id : undefined) : undefined;
    })();
    // the CPU-seconds granted bound this execution too: killed (reason quota) once it used them, or once the tenant's
    // quota was lowered by what it has left (the quota read again through its cache while it runs)
    const cpuSecondsLimitNow = async () => cpuLimitNow(grant, (await this.quotasOf(principal.tenantId)).cpuSeconds);
    const common = { stdin: undefined as string | undefined, env: input.env, timeoutMs, outputCapBytes: this.d.settings.outputCapBytes, startWhen: admitted, cpuSecondsLimit: limit, cpuSecondsLimitNow, ...listeners };
    const request: ExecRequest = 'command' in input ? { ...common, argv: input.command, stdin: input.stdin } : { ...common, argv: INTERPRETERS[input.language], stdin: input.code };
    const run = startedOrFailed(() => this.d.runtime.exec(sandboxId, executionId, request));
    try {
      await admitted;
    } catch (error) {
      run.result.catch(() => undefined); // nothing ran: the runtime gave the program up
      await this.releaseCpu(principal.tenantId, executionId);
      throw error;
    }
    let result: ExecResult;
    try {
      this.running.set(sandboxId, run.kill);
      result = await run.result;
    } catch (error) {
      release?.();
      try {
        await this.finish(principal, sandboxId, executionId, undefined, await this.metering(principal, row.template, undefined, heldMicros));
      } finally {
        this.endLive(executionId);
      }
      throw error;
    } finally {
      release?.();
      this.running.delete(sandboxId);
      // followers learn the end once the outcome is recorded (below), or now if it failed
    }
    try {
      await this.finish(principal, sandboxId, executionId, result, await this.metering(principal, row.template, result, heldMicros));
    } finally {
      this.endLive(executionId);
    }
    return executionViewOf((await this.d.repo.execution(principal.tenantId, sandboxId, executionId))!);
  }

  /**
   * Reattaches to an execution by id (`read` on the session): what it printed so far, in
   * order, then the rest as it comes, then its outcome. A finished one (or one running on
   * another instance) gives its stored output and its state.
   */
  async follow(caller: Caller, sandboxId: string, executionId: string, onChunk: (chunk: OutputChunk) => void): Promise<ExecutionView> {
    await this.readable(caller, sandboxId);
    const stored = await this.d.repo.execution(caller.principal.tenantId, sandboxId, executionId);
    if (!stored) throw new PalisadeError('not_found', 'execution not found');
    const live = this.live.get(executionId);
    if (live) await new Promise<void>((resolve) => live.follow({ onChunk, onEnd: resolve }));
    else {
      if (stored.stdout.length > 0) onChunk({ stream: 'stdout', data: stored.stdout });
      if (stored.stderr.length > 0) onChunk({ stream: 'stderr', data: stored.stderr });
    }
    return executionViewOf((await this.d.repo.execution(caller.principal.tenantId, sandboxId, executionId))!);
  }

  private endLive(executionId: string): void {
    this.live.get(executionId)?.end();
    this.live.delete(executionId);
  }

  async stop(caller: Caller, sandboxId: string): Promise<SandboxView> {
    const row = await this.writable(caller, sandboxId);
    this.local(row);
    await this.handle(row.tenantId, sandboxId, this.command(caller.principal, { type: 'stop', data: { reason: 'requested' } }));
    await this.release(sandboxId);
    return viewOf((await this.d.repo.sandbox(row.tenantId, sandboxId))!);
  }

  async delete(caller: Caller, sandboxId: string): Promise<void> {
    const row = await this.writable(caller, sandboxId);
    this.local(row);
    await this.handle(row.tenantId, sandboxId, this.command(caller.principal, { type: 'delete', data: {} }));
    await this.release(sandboxId);
  }

  /** Stops the sandboxes idle for longer than the setting; returns how many. */
  async stopIdle(): Promise<number> {
    const idle = await this.d.repo.idleSince(this.d.settings.instance, new Date(this.now().getTime() - this.d.settings.idleStopMs));
    for (const row of idle) await this.stopBySelf(row, 'idle');
    return idle.length;
  }

  /** Stops the sandboxes past their lifetime limit, killing what runs there; returns how many. */
  async stopExpired(): Promise<number> {
    const expired = await this.d.repo.expiredBy(this.d.settings.instance, this.now());
    for (const row of expired) await this.stopBySelf(row, 'lifetime');
    return expired.length;
  }

  private async stopBySelf(row: SandboxRow, reason: StopReason): Promise<void> {
    await this.handle(row.tenantId, row.sandboxId, { type: 'stop', data: { reason }, metadata: { tenantId: row.tenantId, actor: SELF, now: this.now() } });
    await this.release(row.sandboxId);
  }

  /**
   * At start (after a crash or kill -9 too): every container and cgroup of this
   * orchestrator's instance is removed (what ran is over), ready sandboxes are adopted
   * (their workspace kept, or prepared again), the rest removed; an execution recorded as
   * running is recorded as `lost` (no usage: nothing was measured, nothing is billed twice).
   */
  async recover(): Promise<{ adopted: number; lost: number; removedContainers: number }> {
    // alive from here on: a later process of this instance's name keeps this one's grants
    this.unholdBoot ??= await this.d.repo.holdBoot(this.boot);
    const live = await this.d.repo.liveSandboxes(this.d.settings.instance);
    const ready = live.filter((r) => r.status === 'ready');
    const leftovers = await this.d.runtime.reconcile(new Set(ready.map((r) => r.sandboxId)));
    for (const row of ready) await this.d.runtime.create(row.sandboxId, row.limits);
    // an execution whose grant a live process of the same name holds (a rolling restart's overlap) runs there: not lost
    const elsewhere = await this.d.repo.liveElsewhere(this.d.settings.instance, this.boot);
    let lost = 0;
    for (const row of live.filter((r) => r.runningExecution && !elsewhere.has(r.runningExecution))) {
      const noUsage = { cpuSeconds: 0, memoryGbSeconds: 0, wallSeconds: 0 };
      const executionId = row.runningExecution!;
      const data = { executionId, reason: 'lost' as const, exitCode: null, signal: null, stdoutBytes: 0, stderrBytes: 0, usage: noUsage };
      await this.handle(row.tenantId, row.sandboxId, { type: 'finish', data, metadata: { tenantId: row.tenantId, actor: SELF, now: this.now() } });
      // nothing was measured: its hold is released, so it is billed neither now nor at expiry
      await this.releaseHold(row.tenantId, executionId);
      lost++;
    }
    // the grants of the processes that are gone, after their containers were removed (a lost execution's left with its exec_finished;
    // this drops those claimed for executions that never started); a live process's stay, and a grant nobody drops expires
    await this.d.repo.releaseCpuOf(this.d.settings.instance, this.boot);
    return { adopted: ready.length, lost, removedContainers: leftovers.containers.length };
  }

  /** At a clean stop: this process is no longer alive for the others of its instance's name (a crash ends its connection, and so the mark, too). */
  async close(): Promise<void> {
    const unhold = this.unholdBoot;
    this.unholdBoot = undefined;
    await unhold?.();
  }

  /** A sandbox lives on the instance that created it (its runtime holds the workspace); routing to another is not built yet. */
  private local(row: SandboxRow): void {
    if (row.instance !== this.d.settings.instance) throw new PalisadeError('unavailable', `the sandbox lives on orchestrator instance ${row.instance}`);
  }

  /** Kills what runs (its end is recorded as killed by the exec call) and removes the sandbox's workspace. */
  private async release(sandboxId: string): Promise<void> {
    this.running.get(sandboxId)?.();
    await this.d.runtime.remove(sandboxId);
  }

  /** The tenant's quotas in force: its own, else the settings'. */
  private async quotasOf(tenantId: string): Promise<{ maxSandboxes: number; cpuSeconds: number }> {
    return this.d.tenantQuotas ? this.d.tenantQuotas(tenantId) : this.d.settings.quotas;
  }

  /** Nothing left of the tenant's CPU-seconds quota (used, or granted to its executions running on any instance): 429 naming it. */
  private cpuQuotaError(used: number, running: number, cpuSeconds: number): PalisadeError {
    const { cpuWindowMs } = this.d.settings.quotas;
    const held = running > 0 ? ` and its running executions may still use ${Math.ceil(running)}` : '';
    return new PalisadeError('rate_limited', `quota cpu-seconds: the tenant's executions used ${Math.floor(used)} CPU-seconds in the last ${cpuWindowMs / 3_600_000} hours${held} (limit ${cpuSeconds})`, {
      quota: { name: 'cpu-seconds', limit: cpuSeconds, used: Math.floor(used), windowMs: cpuWindowMs, ...(running > 0 ? { running: Math.ceil(running) } : {}) },
    });
  }

  /** The execution's worst case at the tenant's prices (a quote: nothing held yet); undefined when billing is off. */
  private async worstCasePrice(tenantId: string, row: SandboxRow, timeoutMs: number): Promise<bigint | undefined> {
    if (!this.d.billing) return undefined;
    return this.d.billing.price(tenantId, row.template, meteredQuantities(worstCaseUsage(row.limits, timeoutMs)));
  }

  private async releaseHold(tenantId: string, executionId: string): Promise<void> {
    if (!this.d.billing) return;
    await this.d.billing.release(tenantId, executionId).catch((error: unknown) => {
      this.d.warn?.({ executionId, code: (error as PalisadeError).code }, 'hold not released: billing expires it unposted');
    });
  }

  /**
   * The usage event's content: the execution's quantities priced by billing, never more
   * than was held; if billing cannot price it now, the hold itself (marked `estimated`).
   */
  private async metering(principal: Principal, template: string, result: ExecResult | undefined, heldMicros: bigint | undefined): Promise<ExecutionMetering> {
    const usage = meteredQuantities(result ? roundUsage(result.usage) : { cpuSeconds: 0, memoryGbSeconds: 0, wallSeconds: 0 });
    const { agentId } = billedSubjectOf(principal);
    if (!this.d.billing || heldMicros === undefined) return { agentId, actualMicros: '0', model: template, usage };
    try {
      const priced = await this.d.billing.price(principal.tenantId, template, usage);
      return { agentId, actualMicros: String(priced < heldMicros ? priced : heldMicros), model: template, usage };
    } catch (error) {
      this.d.warn?.({ code: (error as PalisadeError).code }, 'usage not priced: the hold is charged');
      return { agentId, actualMicros: String(heldMicros), model: template, usage: [...usage, { kind: 'estimated', quantity: 1 }] };
    }
  }

  private async finish(principal: Principal, sandboxId: string, executionId: string, result: ExecResult | undefined, metering: ExecutionMetering): Promise<void> {
    const usage = result ? roundUsage(result.usage) : { cpuSeconds: 0, memoryGbSeconds: 0, wallSeconds: 0 };
    const data = {
      executionId,
      reason: result?.reason ?? ('killed' as const),
      exitCode: result?.exitCode ?? null,
      signal: result?.signal ?? null,
      stdoutBytes: result?.stdout.length ?? 0,
      stderrBytes: result?.stderr.length ?? 0,
      usage,
      metering,
    };
    await this.handle(
      principal.tenantId,
      sandboxId,
      this.command(principal, { type: 'finish', data }),
      result
        ? (tx) => this.d.repo.storeOutput(tx, principal.tenantId, { executionId, stdout: result.stdout, stderr: result.stderr, stdoutTruncated: result.stdoutTruncated, stderrTruncated: result.stderrTruncated })
        : undefined,
    );
  }

  /**
   * A command on an existing sandbox, decided on its read-model row (locked for the
   * transaction, at the stream's version: the inline projection keeps it so) rather than on
   * its stream, which grows by three events per execution and was read whole by every
   * command (the start of an execution among them). No row: the stream, as for a creation.
   */
  private async handle(tenantId: string, sandboxId: string, command: SandboxCommand, alsoInTransaction?: (tx: Transaction) => Promise<void>): Promise<void> {
    const stream = streamName('sandbox', sandboxId);
    const decided = await this.d.store.inTransaction(async (tx) => {
      const row = await this.d.repo.lockedSandbox(tx, tenantId, sandboxId);
      if (!row) return false;
      const events = sandboxDecider.decide(command, sandboxStateOf(row)).map((e) => envelopeOf(this.d.eventContext, command.metadata, e));
      if (events.length > 0) {
        const { nextVersion } = await this.d.store.appendToStream(tx, stream, events, row.version);
        await this.d.repo.projection.apply(tx, events, nextVersion);
      }
      await alsoInTransaction?.(tx);
      return true;
    });
    if (!decided) await this.handler.handle(stream, command, { alsoInTransaction });
  }

  /**
   * A command decided on the sandbox's row as this request read it, committed with the row
   * in one statement (one round trip: the start of an execution, which the first byte
   * waits for). If the row moved since, or the decision on it is a refusal, the command is
   * decided again on the locked row (`handle`): a refusal is never made on a stale row.
   */
  private async handleOn(row: SandboxRow, command: SandboxCommand): Promise<void> {
    let events: EventEnvelope[];
    try {
      events = sandboxDecider.decide(command, sandboxStateOf(row)).map((e) => envelopeOf(this.d.eventContext, command.metadata, e));
    } catch {
      return this.handle(row.tenantId, row.sandboxId, command);
    }
    if (events.length === 0) return;
    try {
      await this.d.repo.commit(events, row.version);
    } catch (error) {
      if (!(error instanceof ConcurrencyError)) throw error;
      await this.handle(row.tenantId, row.sandboxId, command);
    }
  }

  /** The session, if the caller may read it (the policy's session roles); else not found, as another tenant's. */
  private async session(caller: Caller, sessionId: string): Promise<SessionRow> {
    const session = await this.d.sessions.session(caller.principal.tenantId, sessionId);
    if (!session) throw new PalisadeError('not_found', 'session not found');
    const [read] = await this.ask(caller, [{ type: SESSION_RESOURCE, action: 'read', session }]);
    if (read.decision !== 'allow') throw new PalisadeError('not_found', 'session not found');
    return session;
  }

  /** The sandbox and its session, if the caller may read the session (the policy's session roles); else not found. */
  private async readable(caller: Caller, sandboxId: string): Promise<{ row: SandboxRow; session: SessionRow }> {
    const found = await this.sandboxAndSession(caller, sandboxId);
    const [read] = await this.ask(caller, [{ type: SESSION_RESOURCE, action: 'read', session: found.session }]);
    if (read.decision !== 'allow') throw notFound();
    return found;
  }

  /**
   * The sandbox's row and its session's, both read at once when the sandbox's session is
   * known here (a sandbox never changes session: the id is kept, the rows are read fresh).
   * Nothing is decided about the caller yet.
   */
  private async sandboxAndSession(caller: Caller, sandboxId: string): Promise<{ row: SandboxRow; session: SessionRow }> {
    const { tenantId } = caller.principal;
    const known = this.sessionOf.get(sandboxId)?.sessionId;
    const [row, early] = await Promise.all([this.d.repo.sandbox(tenantId, sandboxId), known ? this.d.sessions.session(tenantId, known) : undefined]);
    if (!row || row.status === 'deleted') throw notFound();
    const session = row.sessionId === known ? early : await this.d.sessions.session(tenantId, row.sessionId);
    if (!session) throw notFound();
    if (this.sessionOf.size >= SESSIONS_KEPT) this.sessionOf.delete(this.sessionOf.keys().next().value as string);
    this.sessionOf.set(sandboxId, session);
    return { row, session };
  }

  /** The sandbox, if the caller may read its session (else not found) and write it (else 403): both asked in one request. */
  private async writable(caller: Caller, sandboxId: string): Promise<SandboxRow> {
    const { row, session } = await this.sandboxAndSession(caller, sandboxId);
    const [read, write] = await this.ask(caller, [
      { type: SESSION_RESOURCE, action: 'read', session },
      { type: SESSION_RESOURCE, action: 'write', session },
    ]);
    if (read.decision !== 'allow') throw notFound();
    if (write.decision !== 'allow') throw refusalError('write', write);
    return row;
  }

  /**
   * `read` on the session (not found if refused), `write` on it and `invoke` of the tool,
   * asked together (one request: the client gathers what is asked in one turn; `read`
   * comes from its cache when it can); the first refusal, if any. With `approval`, every decision is asked with its parameters (what an approval is
   * bound to); one that requires an approval is asked again with the caller's approval
   * token, if any (the policy service consumes it: allowed once), after `beforeRedeem` (which may throw).
   */
  private async refusal(
    caller: Caller,
    session: SessionRow,
    approval?: { parameters: Record<string, string>; token?: string },
    beforeRedeem?: () => void,
    asked?: { value: () => Promise<AuthorizeDecision[]> },
  ): Promise<{ action: string; decision: AuthorizeDecision; approval?: ApprovalRequest } | undefined> {
    const all = this.execAsks(session, approval?.parameters);
    const asks = all.slice(1);
    const [read, ...decisions] = await (asked ? asked.value() : this.ask(caller, all));
    if (read.decision !== 'allow') throw notFound();
    for (const [i, d] of decisions.entries()) {
      if (d.decision === 'allow') continue;
      const ask = asks[i];
      if (d.decision === 'requires_approval' && approval?.token) {
        beforeRedeem?.();
        const [redeemed] = await this.ask(caller, [{ ...ask, approvalToken: approval.token }]);
        if (redeemed.decision === 'allow') continue;
        return { action: ask.action, decision: redeemed };
      }
      const request: ApprovalRequest | undefined =
        d.decision === 'requires_approval' && approval
          ? { action: ask.action, resource: ask.type === TOOL_RESOURCE ? { type: TOOL_RESOURCE, id: EXECUTE_TOOL } : { type: SESSION_RESOURCE, id: session.sessionId }, parameters: approval.parameters, service: 'sandbox-orchestrator', ...(d.actionHash ? { actionHash: d.actionHash } : {}) }
          : undefined;
      return { action: ask.action, decision: d, ...(request ? { approval: request } : {}) };
    }
    return undefined;
  }

  /** An execution's decisions, in the order `refusal` reads them: `read` on the session, `write` on it and `invoke` of the tool (with an approval's parameters). */
  private execAsks(session: SessionRow, parameters?: Record<string, string>): SessionAsk[] {
    return [
      { type: SESSION_RESOURCE, action: 'read', session },
      { type: SESSION_RESOURCE, action: 'write', session, parameters },
      { type: TOOL_RESOURCE, action: 'invoke', session, parameters },
    ];
  }

  private ask(caller: Caller, asks: SessionAsk[]): Promise<AuthorizeDecision[]> {
    return askPolicy(
      this.d.policy(),
      caller,
      asks.map(({ type, action, session, parameters, approvalToken }): PolicyAsk => ({
        action,
        ...(parameters ? { parameters } : {}),
        ...(approvalToken ? { approvalToken } : {}),
        resource:
          type === TOOL_RESOURCE
            ? { type: TOOL_RESOURCE, id: EXECUTE_TOOL, attributes: { session: session.sessionId } }
            : { type: SESSION_RESOURCE, id: session.sessionId, attributes: sessionAttributes(session) },
      })),
    );
  }

  private command(principal: Principal, command: Omit<SandboxCommand, 'metadata'>): SandboxCommand {
    return { ...command, metadata: { tenantId: principal.tenantId, actor: { type: principal.type, id: principal.id }, now: this.now() } } as SandboxCommand;
  }
}

/** The runtime's run, or one that failed (a runtime throwing at once is a failed run, recorded as any other once admitted). */
function startedOrFailed(exec: () => ReturnType<SandboxRuntime['exec']>): ReturnType<SandboxRuntime['exec']> {
  try {
    return exec();
  } catch (error) {
    return { result: Promise.reject(error), kill: () => undefined };
  }
}

/** A CPU grant outlives its execution's timeout by this much before it stops counting (an instance that died and never came back). */
const GRANT_GRACE_MS = 60_000;

/** What is asked of the policy service about a session (or the tool, within it). */
type SessionAsk = { type: string; action: string; session: SessionRow; parameters?: Record<string, string>; approvalToken?: string };

/** A session as the policy service is told of it: the roles its decisions rest on. */
function sessionAttributes(session: SessionRow): Record<string, string | string[]> {
  return { owner: session.owner, collaborators: session.collaborators, viewers: session.viewers, agents: session.agents };
}

/** All the policy is told of a session (its id, tenant and roles): two reads alike here are decided alike. */
function policyViewOf(session: SessionRow): string {
  return JSON.stringify([session.tenantId, session.sessionId, sessionAttributes(session)]);
}

/** Sandbox → session rows kept (the oldest forgotten first). */
const SESSIONS_KEPT = 10_000;

/** A promise whose failure is kept for later (never unhandled meanwhile): asked now, judged in its turn. */
function settle<T>(promise: Promise<T>): { value: () => Promise<T> } {
  const outcome = promise.then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  );
  return {
    value: async () => {
      const o = await outcome;
      if (!o.ok) throw o.error;
      return o.value;
    },
  };
}

function sandboxQuotaError(limit: number): PalisadeError {
  return new PalisadeError('rate_limited', `quota concurrent-sandboxes: the tenant has ${limit} sandboxes ready (limit ${limit}); stop or delete one`, { quota: { name: 'concurrent-sandboxes', limit } });
}

/** What the caller asks the policy service for (`POST /v1/approvals`), exactly, to have an execution approved. */
export interface ApprovalRequest {
  action: string;
  resource: { type: string; id: string };
  parameters: Record<string, string>;
  service: 'sandbox-orchestrator';
  actionHash?: string;
}

function refusalError(action: string, decision: AuthorizeDecision, approval?: ApprovalRequest): PalisadeError {
  if (decision.decision === 'requires_approval') {
    const next = approval
      ? 'ask the policy service for an approval (POST /v1/approvals with details.approval, without actionHash) and repeat the same request with its approvalToken'
      : 'approvals are taken for executions only';
    return new PalisadeError('forbidden', `policy: ${action} requires an approval (rule ${decision.rule}): ${next}`, { rule: decision.rule, ...(approval ? { approval } : {}) });
  }
  return new PalisadeError('forbidden', `policy denies ${action} (rule ${decision.rule}): ${decision.reason}`, { rule: decision.rule });
}

/** Usage rounded to micro-units (events carry numbers a consumer can sum without float noise). */
function roundUsage(u: { cpuSeconds: number; memoryGbSeconds: number; wallSeconds: number }): ExecutionUsage {
  const r = (n: number) => Math.round(n * 1e6) / 1e6;
  return { cpuSeconds: r(u.cpuSeconds), memoryGbSeconds: r(u.memoryGbSeconds), wallSeconds: r(u.wallSeconds) };
}

function viewOf(row: SandboxRow): SandboxView {
  const view: SandboxView = {
    id: row.sandboxId,
    sessionId: row.sessionId,
    template: row.template,
    limits: row.limits,
    status: row.status,
    createdAt: row.createdAt,
    lastActivityAt: row.lastActivityAt,
    etag: row.version,
  };
  if (row.runningExecution) view.runningExecution = row.runningExecution;
  if (row.expiresAt) view.expiresAt = row.expiresAt;
  return view;
}

function executionViewOf(row: ExecutionRow): ExecutionView {
  const view: ExecutionView = {
    id: row.executionId,
    sandboxId: row.sandboxId,
    program: row.program,
    status: row.status,
    exitCode: row.exitCode,
    signal: row.signal,
    stdout: row.stdout.toString('utf8'),
    stderr: row.stderr.toString('utf8'),
    stdoutTruncated: row.stdoutTruncated,
    stderrTruncated: row.stderrTruncated,
    startedAt: row.startedAt,
  };
  if (row.reason) view.reason = row.reason;
  if (row.usage) view.usage = row.usage;
  if (row.finishedAt) view.finishedAt = row.finishedAt;
  return view;
}
