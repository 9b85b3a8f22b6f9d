import { Controller, Get, Global, Inject, Module, Req, Res, type DynamicModule } from '@nestjs/common';
import { APP_GUARD, Reflector } from '@nestjs/core';
import type { AccessTokenVerifier } from '@palisade/auth-verifier';
import { ApiOkResponse, ApiOperation, ApiServiceUnavailableResponse, ApiTags } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { SERVICE_NAMES } from '@palisade/contracts';
import { AuthGuard, Public, type ApiKeyResolver } from './http/auth.guard';
import { EdgeTextGuard } from './http/edge-text';
import { callingService, MtlsGuard, OperatorCallers, platformCaller, ServiceCallers } from './http/mtls.guard';
import type { Platform } from './platform';
import { scrapeMetrics } from './cluster-metrics';
import { serviceReadiness } from './health';

/** Injection token of the running service's Platform. */
export const PLATFORM = Symbol('palisade.platform');

@ApiTags('operations')
@Controller()
class OperationsController {
  constructor(@Inject(PLATFORM) private readonly platform: Platform) {}

  @Get('health/live')
  @Public()
  @ApiOperation({ summary: 'Liveness: the process serves HTTP' })
  @ApiOkResponse({ description: 'alive' })
  live() {
    return { status: 'ok' };
  }

  @Get('health/ready')
  @Public()
  @ApiOperation({
    summary: 'Readiness: 200 only when every dependency answers and no event reader is behind (run as workers: in every worker); the state of each check only for a client certificate of the platform (service or admin)',
  })
  @ApiOkResponse({ description: 'ready (with the state of each dependency for operators)' })
  @ApiServiceUnavailableResponse({ description: 'not ready; for operators, each failing check says why' })
  async ready(@Req() req: Request, @Res() res: Response) {
    const { ready, checks } = await serviceReadiness(() => this.platform.readiness());
    const status = ready ? 'ready' : 'not_ready';
    res.status(ready ? 200 : 503).json(platformCaller(req) ? { status, checks } : { status });
  }

  @Get('internal/whoami')
  @ServiceCallers(...SERVICE_NAMES)
  @ApiOperation({ summary: 'Service-to-service only (mTLS): the calling service as its client certificate names it' })
  whoami(@Req() req: Request) {
    return { caller: callingService(req) };
  }

  @Get('metrics')
  @OperatorCallers()
  @ApiOperation({ summary: 'Prometheus metrics (text exposition format) of the whole service (run as workers: all of them, summed); only for a client certificate of the platform (service or admin)' })
  async metrics(@Res() res: Response) {
    const registry = this.platform.options.metrics;
    res.setHeader('content-type', registry.contentType);
    res.send(await scrapeMetrics(registry));
  }
}

@Global()
@Module({})
export class PlatformModule {
  static forRoot(platform: Platform, verifier: Pick<AccessTokenVerifier, 'verify'>, apiKeys?: ApiKeyResolver): DynamicModule {
    return {
      module: PlatformModule,
      controllers: [OperationsController],
      providers: [
        { provide: PLATFORM, useValue: platform },
        { provide: APP_GUARD, useClass: MtlsGuard },
        { provide: APP_GUARD, useFactory: (reflector: Reflector) => new AuthGuard(reflector, verifier, apiKeys), inject: [Reflector] },
        // global guards run in this order: the edge check of text once the caller is known
        { provide: APP_GUARD, useClass: EdgeTextGuard },
      ],
      exports: [PLATFORM],
    };
  }
}
