import { execFileSync } from 'node:child_process';
import { lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CrunWorkspaceFiles } from './workspace-files';

// The host side of a sandbox's workspace (a directory standing in for its tmpfs; the
// orchestrator runs as root, as here): confinement to the workspace, links refused.
const id = '01a23c19-4a21-749a-b216-8a7770beb807';

describe('workspace files from the host', () => {
  let runDir: string;
  let workspace: string;
  let outside: string;
  let files: CrunWorkspaceFiles;

  beforeEach(() => {
    runDir = mkdtempSync(join(tmpdir(), 'psbx-files-'));
    workspace = join(runDir, 'int', 'sandboxes', id, 'workspace');
    mkdirSync(workspace, { recursive: true });
    outside = join(runDir, 'outside');
    mkdirSync(outside);
    writeFileSync(join(outside, 'secret'), 'host secret');
    files = new CrunWorkspaceFiles({ runDir, instance: 'int' });
  });
  afterEach(() => rmSync(runDir, { recursive: true, force: true }));

  it('writes files (making directories) as the sandbox user, and reads them back', async () => {
    await expect(files.write(id, 'src/app/main.py', Buffer.from('print(1)\n'))).resolves.toBe(9);
    expect(readFileSync(join(workspace, 'src', 'app', 'main.py'), 'utf8')).toBe('print(1)\n');
    for (const p of ['src', 'src/app', 'src/app/main.py']) expect(statSync(join(workspace, p))).toMatchObject({ uid: 101000, gid: 101000 });
    await files.write(id, '/workspace/src/app/main.py', Buffer.from('x'));
    await expect(files.read(id, 'src/app/main.py', 100)).resolves.toEqual(Buffer.from('x'));
  });

  it('refuses .. and paths outside the workspace before touching anything', async () => {
    await expect(files.write(id, '../outside/secret', Buffer.from('pwned'))).rejects.toMatchObject({ code: 'validation', message: 'path: must not contain ..' });
    await expect(files.read(id, '/etc/passwd', 1000)).rejects.toMatchObject({ code: 'validation' });
    expect(readFileSync(join(outside, 'secret'), 'utf8')).toBe('host secret');
  });

  it('follows no symbolic link: not a file link, not a directory link on the way, not one to a place inside', async () => {
    symlinkSync(join(outside, 'secret'), join(workspace, 'leak'));
    symlinkSync(outside, join(workspace, 'door'));
    symlinkSync('/etc', join(workspace, 'etc'));
    writeFileSync(join(workspace, 'inside.txt'), 'in');
    symlinkSync('inside.txt', join(workspace, 'alias'));
    await expect(files.read(id, 'leak', 1000)).rejects.toMatchObject({ code: 'validation', message: expect.stringContaining('symbolic link') });
    await expect(files.read(id, 'door/secret', 1000)).rejects.toMatchObject({ code: 'validation', message: 'path: a name on the way is a symbolic link or not a directory' });
    await expect(files.read(id, 'etc/passwd', 100_000)).rejects.toMatchObject({ code: 'validation' });
    await expect(files.read(id, 'alias', 1000)).rejects.toMatchObject({ code: 'validation' });
    await expect(files.write(id, 'leak', Buffer.from('pwned'))).rejects.toMatchObject({ code: 'validation' });
    await expect(files.write(id, 'door/new', Buffer.from('pwned'))).rejects.toMatchObject({ code: 'validation' });
    expect(readFileSync(join(outside, 'secret'), 'utf8')).toBe('host secret');
    expect(() => lstatSync(join(outside, 'new'))).toThrow();
  });

  it('neither waits on a FIFO nor reads past the size limit, and says what is missing', async () => {
    execFileSync('mkfifo', [join(workspace, 'pipe')]);
    await expect(files.read(id, 'pipe', 1000)).rejects.toMatchObject({ code: 'validation', message: 'path: not a regular file' });
    await expect(files.write(id, 'pipe', Buffer.from('x'))).rejects.toMatchObject({ code: 'validation' });
    writeFileSync(join(workspace, 'big'), Buffer.alloc(2048));
    await expect(files.read(id, 'big', 1024)).rejects.toMatchObject({ code: 'payload_too_large' });
    await expect(files.read(id, 'missing', 1024)).rejects.toMatchObject({ code: 'not_found' });
    mkdirSync(join(workspace, 'dir'));
    await expect(files.read(id, 'dir', 1024)).rejects.toMatchObject({ code: 'validation' });
    await expect(files.read('01a23c19-4a21-749a-b216-000000000000', 'a', 1024)).rejects.toMatchObject({ code: 'not_found' });
  });
});
