import test from 'ava';
import { configSchema } from '../../config/schema.ts';
import { filesNote } from './routes.ts';

test('the home page says the files outlive the cluster, and whether workers read them on each backend', (t) => {
  const local = filesNote(configSchema.parse({ spawn: { backend: 'local' } }));
  t.regex(local, /kept when the cluster stops or is culled; only an instructor's reset removes them/);
  t.regex(local, /Workers run beside JupyterLab and read the same files/);
  const rwo = filesNote(configSchema.parse({ spawn: { backend: 'kubernetes' } }));
  t.regex(rwo, /Workers do not see them: .*shared storage/);
  const rwx = filesNote(configSchema.parse({ spawn: { backend: 'kubernetes' }, kubernetes: { workspace: { accessMode: 'ReadWriteMany' } } }));
  t.regex(rwx, /Every worker mounts the same workspace at \/workspace/);
});
