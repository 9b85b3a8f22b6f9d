export * from './client';
export * from './logger';
// The kafkajs API the services use, so that only this adapter imports kafkajs.
export {
  AclOperationTypes,
  AclPermissionTypes,
  AclResourceTypes,
  CompressionTypes,
  ConfigResourceTypes,
  KafkaJSError,
  KafkaJSProtocolError,
  Partitioners,
  ResourcePatternTypes,
} from 'kafkajs';
export type {
  Admin,
  Consumer,
  ConsumerConfig,
  EachBatchPayload,
  EachMessagePayload,
  Kafka,
  KafkaMessage,
  Message,
  Producer,
  ProducerConfig,
  ProducerRecord,
  RecordMetadata,
  Transaction,
} from 'kafkajs';
