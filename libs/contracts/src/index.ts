export * from './envelope';
export * from './errors';
export * from './services';
export * from './subjects';
export * from './security-events';
export * from './ports';
export * from './principal';
export * from './personal-sealing';
