import { execFile } from 'node:child_process';

/**
 * Compiles the OCI seccomp profile into the BPF program crun would build from it, once,
 * with libseccomp's Python binding (Debian `python3-seccomp`, installed by
 * deploy/local/sandbox.sh). crun takes it from the annotation `run.oci.seccomp_bpf_data`
 * and skips compiling the allowlist on every `crun run` (~30–50 ms here). Same rules: the
 * default action, the allowlist, the argument conditions, the architectures.
 */
const COMPILER = String.raw`
import base64, json, sys, tempfile
import seccomp
profile = json.load(sys.stdin)
ARCH = {'SCMP_ARCH_X86_64': 'X86_64', 'SCMP_ARCH_X86': 'X86', 'SCMP_ARCH_X32': 'X32', 'SCMP_ARCH_AARCH64': 'AARCH64', 'SCMP_ARCH_ARM': 'ARM'}
OPS = {'SCMP_CMP_EQ': seccomp.EQ, 'SCMP_CMP_NE': seccomp.NE, 'SCMP_CMP_MASKED_EQ': seccomp.MASKED_EQ}
def action(rule):
    if rule['action'] == 'SCMP_ACT_ALLOW':
        return seccomp.ALLOW
    if rule['action'] == 'SCMP_ACT_ERRNO':
        return seccomp.ERRNO(rule.get('errnoRet', profile['defaultErrnoRet']))
    raise SystemExit('unsupported action ' + rule['action'])
if profile['defaultAction'] != 'SCMP_ACT_ERRNO':
    raise SystemExit('unsupported default action')
f = seccomp.SyscallFilter(defaction=seccomp.ERRNO(profile['defaultErrnoRet']))
native = seccomp.system_arch()
for name in profile['architectures']:
    arch = getattr(seccomp.Arch, ARCH[name])
    if arch != native:
        try:
            f.add_arch(arch)
        except Exception:
            pass
for rule in profile['syscalls']:
    act = action(rule)
    for name in rule['names']:
        args = [seccomp.Arg(a['index'], OPS[a['op']], a['value'], a.get('valueTwo', 0)) for a in rule.get('args', [])]
        try:
            f.add_rule(act, name, *args)
        except (RuntimeError, ValueError, OSError):
            pass  # a name this libseccomp does not know (crun skips those too)
with tempfile.TemporaryFile() as out:
    f.export_bpf(out)
    out.seek(0)
    sys.stdout.write(base64.b64encode(out.read()).decode())
`;

/** Base64 of the BPF program, or undefined when the binding is missing (crun then compiles the profile itself: slower, the same rules). */
export function compileSeccompBpf(profile: Record<string, unknown>, python = '/usr/bin/python3'): Promise<string | undefined> {
  return new Promise((resolve) => {
    const child = execFile(python, ['-c', COMPILER], { env: { PATH: '/usr/bin:/bin' }, timeout: 30_000, maxBuffer: 4 * 1024 * 1024 }, (error, stdout) => {
      resolve(!error && /^[A-Za-z0-9+/]+=*$/.test(stdout) ? stdout : undefined);
    });
    child.stdin?.end(JSON.stringify(profile));
  });
}
