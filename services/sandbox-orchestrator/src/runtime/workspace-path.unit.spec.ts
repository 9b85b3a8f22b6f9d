import { workspacePath } from './workspace-path';

describe('workspace paths (names below /workspace)', () => {
  it('takes relative paths and absolute ones under /workspace', () => {
    expect(workspacePath('a.txt')).toEqual(['a.txt']);
    expect(workspacePath('src/app/main.py')).toEqual(['src', 'app', 'main.py']);
    expect(workspacePath('/workspace/out/report.csv')).toEqual(['out', 'report.csv']);
  });

  it('refuses .. anywhere, paths outside /workspace, empty and . names, control characters, overlong names', () => {
    for (const bad of ['../etc/passwd', 'a/../../etc/passwd', '/workspace/../etc/passwd', 'a/..', '..']) expect(() => workspacePath(bad)).toThrow('path: must not contain ..');
    for (const bad of ['/etc/passwd', '/workspacex/a', '/', '/workspace-other/a']) expect(() => workspacePath(bad)).toThrow('path: must be in /workspace');
    for (const bad of ['a//b', 'a/./b', './a', 'a/', '/workspace', '/workspace/']) expect(() => workspacePath(bad)).toThrow('path: must name a file');
    expect(() => workspacePath('a\u0000b')).toThrow('control characters');
    expect(() => workspacePath('a\nb')).toThrow('control characters');
    expect(() => workspacePath('x'.repeat(256))).toThrow('at most 255 bytes');
    expect(() => workspacePath('a/'.repeat(600))).toThrow('at most 1024');
    expect(() => workspacePath('')).toThrow('path: required');
  });
});
