import { StringDecoder } from 'node:string_decoder';
import { Body, Controller, Delete, Get, HttpCode, Inject, Param, Post, Put, Query, Req, Res } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiOperation, ApiQuery, ApiTags } from '@nestjs/swagger';
import { PalisadeError } from '@palisade/contracts';
import { Public } from '@palisade/service-kit';
import type { Request, Response } from 'express';
import { CurrentCaller } from '../caller';
import { SANDBOXES_SERVICE, type Ready } from '../sandbox-orchestrator.tokens';
import { sessionIdSchema } from '../sessions/sessions.dto';
import type { Caller } from '../sessions/sessions.service';
import { openApiSchema, parse, withEtag } from '../validation';
import { createSandboxSchema, execSchema, executionIdSchema, filePathSchema, sandboxIdSchema } from './sandboxes.dto';
import type { SandboxesService } from './sandboxes.service';

/**
 * NDJSON answer of a streamed or followed execution: `{"executionId"}` first when known,
 * `{"stdout"}` / `{"stderr"}` lines as the program writes (UTF-8 decoded across chunks),
 * then `{"execution"}`; the status line is sent with the first line, so a refusal before
 * it is an ordinary JSON error.
 */
function ndjson(res: Response) {
  let streaming = false;
  const decoders = { stdout: new StringDecoder('utf8'), stderr: new StringDecoder('utf8') };
  const begin = () => {
    if (streaming) return;
    streaming = true;
    res.status(200).setHeader('content-type', 'application/x-ndjson');
    res.flushHeaders();
  };
  const line = (value: object) => {
    begin();
    res.write(`${JSON.stringify(value)}\n`);
  };
  return {
    started: (executionId: string) => line({ executionId }),
    output: (stream: 'stdout' | 'stderr', chunk: Buffer) => line({ [stream]: decoders[stream].write(chunk) }),
    end: (execution: object) => {
      begin();
      res.end(`${JSON.stringify({ execution })}\n`);
    },
    /** After output began: a last error line; before: the ordinary error answer (rethrown). */
    fail: (error: unknown) => {
      if (!streaming) throw error;
      res.end(`${JSON.stringify({ error: { code: (error as { code?: string }).code ?? 'internal', message: 'the execution failed while streaming' } })}\n`);
    },
  };
}

/**
 * Sandboxes of a session. Reading needs `read` on the session; creating, stopping and
 * deleting `write`; an execution also `invoke` of the tool `execute_code` (the policy
 * service decides, with an agent's own token). A sandbox the caller may not read is a 404.
 */
@ApiTags('sandboxes')
@ApiBearerAuth()
@Controller()
export class SandboxesController {
  constructor(
    @Inject(SANDBOXES_SERVICE)
    private readonly sandboxes: Ready<Pick<SandboxesService, 'create' | 'get' | 'list' | 'exec' | 'execution' | 'follow' | 'stop' | 'delete' | 'mintToken' | 'upload' | 'download' | 'fileLimit'>>,
  ) {}

  @Post('v1/sessions/:sessionId/sandboxes')
  @ApiOperation({
    summary:
      'Create a sandbox in the session, with the limits of a template (small, default, large). Needs write. The answer carries `sandboxToken` (shown once): the sandbox-scoped token of its own callbacks (/v1/sandbox/self…), expiring with it.',
  })
  @ApiBody({ schema: openApiSchema(createSandboxSchema), required: false })
  async create(@CurrentCaller() caller: Caller, @Param('sessionId') sessionId: string, @Body() body: unknown, @Res({ passthrough: true }) res: Response) {
    const { template } = parse(createSandboxSchema, body);
    return withEtag(res, await this.sandboxes().create(caller, parse(sessionIdSchema, sessionId, 'sessionId'), template));
  }

  @Get('v1/sessions/:sessionId/sandboxes')
  @ApiOperation({ summary: 'The session’s sandboxes (not deleted). Needs read.' })
  async list(@CurrentCaller() caller: Caller, @Param('sessionId') sessionId: string) {
    return { items: await this.sandboxes().list(caller, parse(sessionIdSchema, sessionId, 'sessionId')) };
  }

  @Get('v1/sandboxes/:id')
  @ApiOperation({ summary: 'One sandbox: template, limits, status, the execution running. Needs read on its session.' })
  async get(@CurrentCaller() caller: Caller, @Param('id') id: string, @Res({ passthrough: true }) res: Response) {
    return withEtag(res, await this.sandboxes().get(caller, parse(sandboxIdSchema, id, 'id')));
  }

  @Post('v1/sandboxes/:id/executions')
  @HttpCode(200)
  @ApiOperation({ summary: 'Run a command (with stdin) or code (python, node, sh) to its end: exit code, reason (exited, timeout, oom, killed), capped stdout/stderr, usage. Needs write and invoke of execute_code.' })
  @ApiBody({ schema: openApiSchema(execSchema) })
  async exec(@CurrentCaller() caller: Caller, @Param('id') id: string, @Body() body: unknown) {
    return this.sandboxes().exec(caller, parse(sandboxIdSchema, id, 'id'), parse(execSchema, body));
  }

  @Post('v1/sandboxes/:id/executions/stream')
  @ApiOperation({
    summary:
      'The same, streamed as NDJSON while it runs: {"executionId"} first (to reattach with), {"stdout": text} and {"stderr": text} lines as the program writes (within the caps), then {"execution": outcome}. The execution goes on if the client goes away. Refusals before it starts are ordinary JSON errors.',
  })
  @ApiBody({ schema: openApiSchema(execSchema) })
  async stream(@CurrentCaller() caller: Caller, @Param('id') id: string, @Body() body: unknown, @Res() res: Response) {
    const sandboxId = parse(sandboxIdSchema, id, 'id');
    const input = parse(execSchema, body);
    const out = ndjson(res);
    try {
      const execution = await this.sandboxes().exec(caller, sandboxId, input, { onStart: out.started, onStdout: (c) => out.output('stdout', c), onStderr: (c) => out.output('stderr', c) });
      out.end(execution);
    } catch (error) {
      out.fail(error);
    }
  }

  @Get('v1/sandboxes/:id/executions/:executionId/stream')
  @ApiOperation({
    summary:
      'Reattach to an execution by id (NDJSON, as the stream above): everything it printed so far, in order, then the rest as it comes, then {"execution": outcome}; a finished one gives its stored output. Needs read.',
  })
  async follow(@CurrentCaller() caller: Caller, @Param('id') id: string, @Param('executionId') executionId: string, @Res() res: Response) {
    const sandboxId = parse(sandboxIdSchema, id, 'id');
    const execution = parse(executionIdSchema, executionId, 'executionId');
    const out = ndjson(res);
    try {
      out.end(await this.sandboxes().follow(caller, sandboxId, execution, (c) => out.output(c.stream, c.data)));
    } catch (error) {
      out.fail(error);
    }
  }

  @Get('v1/sandboxes/:id/executions/:executionId')
  @ApiOperation({ summary: 'An execution again, by id: running, or its outcome and output. Needs read.' })
  async execution(@CurrentCaller() caller: Caller, @Param('id') id: string, @Param('executionId') executionId: string) {
    return this.sandboxes().execution(caller, parse(sandboxIdSchema, id, 'id'), parse(executionIdSchema, executionId, 'executionId'));
  }

  @Post('v1/sandboxes/:id/token')
  @HttpCode(200)
  @ApiOperation({ summary: 'A new sandbox-scoped token for the sandbox (e.g. after the orchestrator restarted), expiring with it. Needs write.' })
  async token(@CurrentCaller() caller: Caller, @Param('id') id: string) {
    return this.sandboxes().mintToken(caller, parse(sandboxIdSchema, id, 'id'));
  }

  @Put('v1/sandboxes/:id/files')
  @ApiOperation({ summary: 'Upload a file into the workspace (body: the bytes, application/octet-stream; at most SANDBOX_FILE_MAX_BYTES). Needs what an execution needs. Audited by path and size.' })
  @ApiQuery({ name: 'path', description: 'relative to /workspace, or absolute under it; no .. and no symbolic links on the way' })
  async upload(@CurrentCaller() caller: Caller, @Param('id') id: string, @Query('path') path: unknown, @Req() req: Request) {
    const sandboxId = parse(sandboxIdSchema, id, 'id');
    return this.sandboxes().upload(caller, sandboxId, parse(filePathSchema, path, 'path'), await bodyOf(req, this.sandboxes().fileLimit()));
  }

  @Get('v1/sandboxes/:id/files')
  @ApiOperation({ summary: 'Download a file of the workspace (application/octet-stream). Needs what an execution needs. Audited by path and size.' })
  @ApiQuery({ name: 'path', description: 'relative to /workspace, or absolute under it; no .. and no symbolic links on the way' })
  async download(@CurrentCaller() caller: Caller, @Param('id') id: string, @Query('path') path: unknown, @Res() res: Response) {
    const content = await this.sandboxes().download(caller, parse(sandboxIdSchema, id, 'id'), parse(filePathSchema, path, 'path'));
    res.status(200).type('application/octet-stream').send(content);
  }

  @Post('v1/sandboxes/:id/stop')
  @HttpCode(200)
  @ApiOperation({ summary: 'Stop: kill what runs and release the workspace; nothing runs there any more. Needs write.' })
  async stop(@CurrentCaller() caller: Caller, @Param('id') id: string, @Res({ passthrough: true }) res: Response) {
    return withEtag(res, await this.sandboxes().stop(caller, parse(sandboxIdSchema, id, 'id')));
  }

  @Delete('v1/sandboxes/:id')
  @HttpCode(204)
  @ApiOperation({ summary: 'Delete: kill what runs, remove the workspace and the sandbox. Needs write.' })
  async delete(@CurrentCaller() caller: Caller, @Param('id') id: string) {
    await this.sandboxes().delete(caller, parse(sandboxIdSchema, id, 'id'));
  }
}

/** The request body as bytes, at most `max` (413 past it, before the rest is read). */
export async function bodyOf(req: Request, max: number): Promise<Buffer> {
  const tooLarge = () => new PalisadeError('payload_too_large', `a file of at most ${max} bytes`);
  const declared = Number(req.header('content-length') ?? Number.NaN);
  if (declared > max) {
    req.resume(); // the rest is discarded, the answer is 413
    throw tooLarge();
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > max) {
      req.resume();
      throw tooLarge();
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** The bearer token of a sandbox's own callback (a sandbox-scoped token; people's and agents' tokens are not accepted here). */
function sandboxTokenOf(req: Request): string {
  const match = /^Bearer ([A-Za-z0-9._~+/-]+=*)$/.exec(req.header('authorization') ?? '');
  if (!match) throw new PalisadeError('unauthenticated', 'a sandbox token is required (Authorization: Bearer …)');
  return match[1];
}

/**
 * A sandbox's own callbacks, with its sandbox-scoped token (issued by this service at its
 * creation, `sub: sandbox:<id>`, expiring with it): its status and its workspace's files,
 * nothing else and no other sandbox. Not behind the platform's guard (which admits the
 * auth service's tokens only); the token is verified here, deny by default.
 */
@ApiTags('sandboxes')
@ApiBearerAuth()
@Controller('v1/sandbox/self')
export class SandboxSelfController {
  constructor(@Inject(SANDBOXES_SERVICE) private readonly sandboxes: Ready<Pick<SandboxesService, 'self' | 'selfUpload' | 'selfDownload' | 'fileLimit'>>) {}

  @Get()
  @Public()
  @ApiOperation({ summary: 'The sandbox the sandbox-scoped token names: status, limits, expiry.' })
  async self(@Req() req: Request) {
    return this.sandboxes().self(sandboxTokenOf(req));
  }

  @Put('files')
  @Public()
  @ApiOperation({ summary: 'Upload a file into the own workspace (sandbox-scoped token). Audited by path and size.' })
  @ApiQuery({ name: 'path' })
  async upload(@Req() req: Request, @Query('path') path: unknown) {
    const token = sandboxTokenOf(req);
    const file = parse(filePathSchema, path, 'path');
    return this.sandboxes().selfUpload(token, file, await bodyOf(req, this.sandboxes().fileLimit()));
  }

  @Get('files')
  @Public()
  @ApiOperation({ summary: 'Download a file of the own workspace (sandbox-scoped token). Audited by path and size.' })
  @ApiQuery({ name: 'path' })
  async download(@Req() req: Request, @Query('path') path: unknown, @Res() res: Response) {
    const content = await this.sandboxes().selfDownload(sandboxTokenOf(req), parse(filePathSchema, path, 'path'));
    res.status(200).type('application/octet-stream').send(content);
  }
}
