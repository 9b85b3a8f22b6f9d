export * from './types';
export * from './client';
export * from './guard';
export * from './connected';
