import { constants } from 'node:fs';
import { mkdir, open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { PalisadeError } from '@palisade/contracts';
import { HOST_ID_BASE, SANDBOX_GID, SANDBOX_UID } from './oci-config';
import { workspacePath } from './workspace-path';

const { O_RDONLY, O_WRONLY, O_CREAT, O_NOFOLLOW, O_DIRECTORY, O_NONBLOCK } = constants;
const OWNER = { uid: HOST_ID_BASE + SANDBOX_UID, gid: HOST_ID_BASE + SANDBOX_GID };

/** Files of a sandbox's workspace, read and written by the orchestrator (the port; the crun adapter below). */
export interface SandboxFiles {
  /** Writes (replaces) a file, making its directories; returns its size. */
  write(sandboxId: string, path: string, content: Buffer): Promise<number>;
  /** Reads a regular file of at most `maxBytes`. */
  read(sandboxId: string, path: string, maxBytes: number): Promise<Buffer>;
}

/**
 * The workspace tmpfs of a local (crun) sandbox, from the host, confined to it: the path is
 * checked (`workspacePath`: no `..`, under /workspace), then walked one name at a time from
 * an open descriptor of the workspace, each directory opened with O_NOFOLLOW|O_DIRECTORY
 * relative to the previous one (`/proc/self/fd/<fd>/<name>`) and the file itself with
 * O_NOFOLLOW: a symbolic link anywhere on the way is refused (a program in the sandbox
 * cannot swap one in between a check and the open, there is no check apart from the
 * open). Files written are the sandbox user's (host uid 101000), mode 0644.
 */
export class CrunWorkspaceFiles implements SandboxFiles {
  constructor(private readonly options: { runDir: string; instance: string }) {}

  async write(sandboxId: string, path: string, content: Buffer): Promise<number> {
    const names = workspacePath(path);
    const dir = await this.walk(sandboxId, names.slice(0, -1), true);
    try {
      const file = await this.openIn(dir, names[names.length - 1], O_WRONLY | O_CREAT | O_NOFOLLOW | O_NONBLOCK, 0o644);
      try {
        // a FIFO or other special file the sandbox made is neither waited on nor written
        if (!(await file.stat()).isFile()) throw new PalisadeError('validation', 'path: not a regular file');
        await file.truncate(0);
        await file.chown(OWNER.uid, OWNER.gid);
        await file.writeFile(content);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOSPC') throw new PalisadeError('payload_too_large', 'the workspace is full (its size limit)');
        throw error;
      } finally {
        await file.close();
      }
      return content.length;
    } finally {
      await dir.close();
    }
  }

  async read(sandboxId: string, path: string, maxBytes: number): Promise<Buffer> {
    const names = workspacePath(path);
    const dir = await this.walk(sandboxId, names.slice(0, -1), false);
    try {
      const file = await this.openIn(dir, names[names.length - 1], O_RDONLY | O_NOFOLLOW | O_NONBLOCK, 0);
      try {
        const stat = await file.stat();
        if (!stat.isFile()) throw new PalisadeError('validation', 'path: not a regular file');
        if (stat.size > maxBytes) throw new PalisadeError('payload_too_large', `the file is larger than ${maxBytes} bytes`);
        return await file.readFile();
      } finally {
        await file.close();
      }
    } finally {
      await dir.close();
    }
  }

  /** The directory `names` below the workspace, opened without following any link (made when `create`). */
  private async walk(sandboxId: string, names: readonly string[], create: boolean): Promise<FileHandle> {
    if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(sandboxId)) throw new PalisadeError('validation', 'sandboxId: must be a lowercase UUID');
    const workspace = join(this.options.runDir, this.options.instance, 'sandboxes', sandboxId, 'workspace');
    let dir = await open(workspace, O_RDONLY | O_DIRECTORY | O_NOFOLLOW).catch(() => {
      throw new PalisadeError('not_found', 'sandbox workspace not prepared on this host');
    });
    for (const name of names) {
      try {
        if (create) {
          await mkdir(this.inDir(dir, name), { mode: 0o755 }).then(
            async () => {
              const made = await this.openIn(dir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, 0);
              await made.chown(OWNER.uid, OWNER.gid).finally(() => made.close());
            },
            (error: NodeJS.ErrnoException) => {
              if (error.code !== 'EEXIST') throw error;
            },
          );
        }
        const next = await this.openIn(dir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, 0);
        await dir.close();
        dir = next;
      } catch (error) {
        await dir.close();
        throw error;
      }
    }
    return dir;
  }

  private inDir(dir: FileHandle, name: string): string {
    return `/proc/self/fd/${dir.fd}/${name}`;
  }

  private async openIn(dir: FileHandle, name: string, flags: number, mode: number): Promise<FileHandle> {
    try {
      return await open(this.inDir(dir, name), flags, mode);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ELOOP') throw new PalisadeError('validation', 'path: a symbolic link (links are not followed out of the workspace, nor within it)');
      if (code === 'ENOTDIR') throw new PalisadeError('validation', 'path: a name on the way is a symbolic link or not a directory');
      if (code === 'ENOENT') throw new PalisadeError('not_found', 'file not found');
      if (code === 'EISDIR') throw new PalisadeError('validation', 'path: a directory');
      if (code === 'ENOSPC') throw new PalisadeError('payload_too_large', 'the workspace is full (its size limit)');
      if (code === 'ENXIO') throw new PalisadeError('validation', 'path: not a regular file');
      throw error;
    }
  }
}
