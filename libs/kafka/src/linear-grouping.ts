import { kafkajsModulePath, replaceKafkajsModule } from './kafkajs-module';

/**
 * kafkajs 2.2.4 groups a batch's messages by partition copying each partition's array at
 * every message (`[...current, message]`): quadratic, 3 % of the audit writer's thread for
 * batches of 2,000 records over 6 partitions (issue 17's drain profile). kafkajs has had no
 * release since 2023, so this module puts a linear grouping with the same result in the
 * module cache before kafkajs loads its producer (it must be imported before `kafkajs`).
 * Where kafkajs was loaded first, its own grouping stays: slower, not different.
 */
export function groupMessagesPerPartition<M>({ topic, partitionMetadata, messages, partitioner }: GroupingInput<M>): Record<number, M[]> {
  if (partitionMetadata.length === 0) return {};
  const result: Record<number, M[]> = {};
  for (const message of messages) {
    const partition = partitioner({ topic, partitionMetadata, message });
    (result[partition] ??= []).push(message);
  }
  return result;
}

export interface GroupingInput<M> {
  topic: string;
  partitionMetadata: readonly unknown[];
  messages: readonly M[];
  partitioner: (args: { topic: string; partitionMetadata: readonly unknown[]; message: M }) => number;
}

/** Where kafkajs keeps its grouping; undefined when it cannot be resolved (another kafkajs layout). */
export const kafkajsGroupingPath = (): string | undefined => kafkajsModulePath(GROUPING);

const GROUPING = 'src/producer/groupMessagesPerPartition';
replaceKafkajsModule(GROUPING, groupMessagesPerPartition);
