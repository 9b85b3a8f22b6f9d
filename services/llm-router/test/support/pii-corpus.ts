// The labelled corpus lives with the guards (the benchmark measures the built detector on it).
export * from '../../src/guards/corpus/pii.corpus';
