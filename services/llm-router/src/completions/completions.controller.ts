import { Body, Controller, Get, Headers, HttpCode, Inject, Post, Req, Res, UseFilters } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiHeader, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { Principal } from '@palisade/contracts';
import { CurrentPrincipal, openApiSchema, parse } from '@palisade/service-kit';
import { subjectOf } from '@palisade/policy-client';
import type { Request, Response } from 'express';
import { once } from 'node:events';
import { COMPLETIONS_SERVICE, type Ready } from '../llm-router.tokens';
import { AnthropicErrorFilter, OpenAiErrorFilter } from './api-errors';
import { chatCompletionSchema, classificationSchema, embeddingsSchema, messagesSchema } from './completions.dto';
import type { Api, CallInput, CallResult, CompletionsService } from './completions.service';

const CLASSIFICATION = { name: 'X-Palisade-Classification', required: false, description: 'public, internal, confidential or restricted: what the caller declares (raised by the PII detector, never lowered)' };

/** What every call takes from the HTTP request: the declared class, the caller's token, and an abort signal (the client going away stops the provider call). */
function callerOf(principal: Principal, declared: string | undefined, req: Request, res: Response): Pick<CallInput, 'principal' | 'declared' | 'token' | 'signal'> {
  const aborted = new AbortController();
  // only a caller that goes away before the end aborts (an abort builds a DOMException: not on every request)
  res.on('close', () => {
    if (!res.writableFinished) aborted.abort();
  });
  // the caller's token as presented: the policy service decides on tools for who it names, not for what we claim
  const { token } = subjectOf(principal, req.header('authorization'));
  return { principal, declared: declared === undefined ? undefined : parse(classificationSchema, declared, 'X-Palisade-Classification'), ...(token ? { token } : {}), signal: aborted.signal };
}

async function serve(service: Pick<CompletionsService, 'call'>, api: Api, principal: Principal, body: Record<string, unknown>, declared: string | undefined, req: Request, res: Response): Promise<void> {
  const result: CallResult = await service.call({ api, body, ...callerOf(principal, declared, req, res) });
  res.setHeader('x-palisade-request-id', result.requestId);
  if (result.kind === 'json') {
    // written as it is: res.json would also hash the body for an ETag no caller of a POST uses
    res.status(200).setHeader('content-type', 'application/json; charset=utf-8');
    res.end(JSON.stringify(result.body));
    return;
  }
  res.status(200);
  res.setHeader('content-type', 'text/event-stream; charset=utf-8');
  res.setHeader('cache-control', 'no-cache');
  res.setHeader('x-accel-buffering', 'no');
  res.flushHeaders();
  try {
    for await (const frame of result.events) {
      if (res.destroyed) break;
      if (!res.write(frame)) await Promise.race([once(res, 'drain'), once(res, 'close')]);
    }
  } finally {
    await result.events.return(undefined);
    if (!res.destroyed) res.end();
  }
}

/**
 * The OpenAI-compatible API, for agents' and people's unchanged OpenAI SDKs. The tenant
 * is the token's; errors are in OpenAI's shape.
 */
@ApiTags('openai')
@ApiBearerAuth()
@UseFilters(OpenAiErrorFilter)
@Controller('v1')
export class OpenAiController {
  constructor(@Inject(COMPLETIONS_SERVICE) private readonly completions: Ready<Pick<CompletionsService, 'call' | 'models' | 'embed'>>) {}

  @Post('chat/completions')
  @HttpCode(200)
  @ApiOperation({ summary: 'Chat completion (JSON or SSE stream): masked, classified, routed, budgeted, audited' })
  @ApiHeader(CLASSIFICATION)
  @ApiBody({ schema: openApiSchema(chatCompletionSchema) })
  async chat(@CurrentPrincipal() principal: Principal, @Body() body: unknown, @Headers('x-palisade-classification') declared: string | undefined, @Req() req: Request, @Res() res: Response) {
    await serve(this.completions(), 'openai', principal, parse(chatCompletionSchema, body), declared, req, res);
  }

  @Post('embeddings')
  @HttpCode(200)
  @ApiOperation({ summary: 'Embeddings (OpenAI shape; OpenAI-compatible providers): inputs masked and classified, routed, budgeted, audited' })
  @ApiHeader(CLASSIFICATION)
  @ApiBody({ schema: openApiSchema(embeddingsSchema) })
  async embeddings(@CurrentPrincipal() principal: Principal, @Body() body: unknown, @Headers('x-palisade-classification') declared: string | undefined, @Req() req: Request, @Res({ passthrough: true }) res: Response) {
    const result = await this.completions().embed({ body: parse(embeddingsSchema, body), ...callerOf(principal, declared, req, res) });
    res.setHeader('x-palisade-request-id', result.requestId);
    return result.body;
  }

  @Get('models')
  @ApiOperation({ summary: "The tenant's routes and models, as OpenAI's model list" })
  async models(@CurrentPrincipal() principal: Principal) {
    const ids = await this.completions().models(principal);
    return { object: 'list', data: ids.map((id) => ({ id, object: 'model', created: 0, owned_by: 'palisade' })) };
  }
}

/** The Anthropic-compatible API (`POST /v1/messages`), errors in Anthropic's shape. */
@ApiTags('anthropic')
@ApiBearerAuth()
@UseFilters(AnthropicErrorFilter)
@Controller('v1')
export class AnthropicController {
  constructor(@Inject(COMPLETIONS_SERVICE) private readonly completions: Ready<Pick<CompletionsService, 'call'>>) {}

  @Post('messages')
  @HttpCode(200)
  @ApiOperation({ summary: 'Anthropic messages (JSON; SSE to Anthropic providers): masked, classified, routed, budgeted, audited' })
  @ApiHeader(CLASSIFICATION)
  @ApiBody({ schema: openApiSchema(messagesSchema) })
  async messages(@CurrentPrincipal() principal: Principal, @Body() body: unknown, @Headers('x-palisade-classification') declared: string | undefined, @Req() req: Request, @Res() res: Response) {
    await serve(this.completions(), 'anthropic', principal, parse(messagesSchema, body), declared, req, res);
  }
}
