import { StringDecoder } from 'node:string_decoder';
import { Body, Controller, Delete, Get, HttpCode, Inject, Param, Post, Res } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { CurrentCaller } from '../caller';
import { SANDBOXES_SERVICE, type Ready } from '../sandbox-orchestrator.tokens';
import { sessionIdSchema } from '../sessions/sessions.dto';
import type { Caller } from '../sessions/sessions.service';
import { openApiSchema, parse } from '../validation';
import { createSandboxSchema, execSchema, executionIdSchema, sandboxIdSchema } from './sandboxes.dto';
import type { SandboxesService, SandboxView } from './sandboxes.service';

function withEtag(res: Response, view: SandboxView): SandboxView {
  res.setHeader('etag', `"${view.etag}"`);
  return view;
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
  constructor(@Inject(SANDBOXES_SERVICE) private readonly sandboxes: Ready<Pick<SandboxesService, 'create' | 'get' | 'list' | 'exec' | 'execution' | 'stop' | 'delete'>>) {}

  @Post('v1/sessions/:sessionId/sandboxes')
  @ApiOperation({ summary: 'Create a sandbox in the session, with the limits of a template (small, default, large). Needs write.' })
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
      'The same, streamed as NDJSON while it runs: {"stdout": text} and {"stderr": text} lines as the program writes (within the caps), then {"execution": outcome}. Refusals before it starts are ordinary JSON errors.',
  })
  @ApiBody({ schema: openApiSchema(execSchema) })
  async stream(@CurrentCaller() caller: Caller, @Param('id') id: string, @Body() body: unknown, @Res() res: Response) {
    const sandboxId = parse(sandboxIdSchema, id, 'id');
    const input = parse(execSchema, body);
    let streaming = false;
    const begin = () => {
      if (streaming) return;
      streaming = true;
      res.status(200).setHeader('content-type', 'application/x-ndjson');
      res.flushHeaders();
    };
    const line = (key: 'stdout' | 'stderr', decoder: StringDecoder) => (chunk: Buffer) => {
      begin();
      res.write(`${JSON.stringify({ [key]: decoder.write(chunk) })}\n`);
    };
    try {
      const execution = await this.sandboxes().exec(caller, sandboxId, input, { onStdout: line('stdout', new StringDecoder('utf8')), onStderr: line('stderr', new StringDecoder('utf8')) });
      begin();
      res.end(`${JSON.stringify({ execution })}\n`);
    } catch (error) {
      if (!streaming) throw error; // before any output: the ordinary error answer
      res.end(`${JSON.stringify({ error: { code: (error as { code?: string }).code ?? 'internal', message: 'the execution failed while streaming' } })}\n`);
    }
  }

  @Get('v1/sandboxes/:id/executions/:executionId')
  @ApiOperation({ summary: 'An execution again, by id: running, or its outcome and output. Needs read.' })
  async execution(@CurrentCaller() caller: Caller, @Param('id') id: string, @Param('executionId') executionId: string) {
    return this.sandboxes().execution(caller, parse(sandboxIdSchema, id, 'id'), parse(executionIdSchema, executionId, 'executionId'));
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
