export * from './bootstrap';
export * from './config';
export * from './http/error.filter';
export * from './http/request-context';
export * from './lifecycle';
export * from './platform';
export * from './platform.module';
export * from './http/mtls.guard';
