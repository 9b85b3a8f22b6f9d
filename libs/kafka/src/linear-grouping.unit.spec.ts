import { groupMessagesPerPartition, kafkajsGroupingPath } from './linear-grouping';

describe('groupMessagesPerPartition (linear)', () => {
  // kafkajs' own grouping, loaded from its file (jest's module registry does not see the cache entry).
  const kafkajs = jest.requireActual(kafkajsGroupingPath()!) as typeof groupMessagesPerPartition;
  const partitionMetadata = [0, 1, 2, 3, 4, 5].map((partitionId) => ({ partitionId, leader: 1 }));
  const byField = ({ message }: { message: { partition: number } }) => message.partition;

  it('groups as kafkajs does: each partition its messages in order', () => {
    let seed = 7;
    const messages = Array.from({ length: 2000 }, (_, i) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return { partition: seed % 6, value: `v${i}` };
    });
    const input = { topic: 't', partitionMetadata, messages, partitioner: byField };
    const ours = groupMessagesPerPartition(input);
    expect(ours).toEqual(kafkajs(input));
    expect(Object.keys(ours)).toEqual(['0', '1', '2', '3', '4', '5']);
    expect(ours[3].every((m) => m.partition === 3)).toBe(true);
    expect(Object.values(ours).flat()).toHaveLength(2000);
  });

  it('asks the partitioner once per message, with the topic and metadata', () => {
    const seen: string[] = [];
    const messages = [{ partition: 1 }, { partition: 0 }];
    groupMessagesPerPartition({ topic: 'audit', partitionMetadata, messages, partitioner: ({ topic, message }) => (seen.push(`${topic}/${message.partition}`), message.partition) });
    expect(seen).toEqual(['audit/1', 'audit/0']);
  });

  it('gives nothing without partition metadata, as kafkajs does', () => {
    const input = { topic: 't', partitionMetadata: [], messages: [{ partition: 0 }], partitioner: byField };
    expect(groupMessagesPerPartition(input)).toEqual({});
    expect(kafkajs(input)).toEqual({});
  });
});
