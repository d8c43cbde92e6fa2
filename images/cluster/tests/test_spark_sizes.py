"""Spark's executors, sized from a worker's memory: the conf the driver reads and what each worker offers."""
import dataclasses

import pytest

from modes import worker_commands
from settings import load, memory_bytes
from wiring import write_scheduler_files


def spark_conf(path):
    return dict(line.split(' ', 1) for line in path.read_text().splitlines())


@pytest.mark.parametrize('worker_memory, threads, heap_mb', [
    ('4Gi', '2', 2688),     # the Kubernetes default worker: 3 GiB for the JVM, less its 384 MiB overhead
    ('16Gi', '4', 11170),   # 12 GiB for the JVM, of which 10 % overhead
    ('2GiB', '1', 1152),
    ('1GiB', '1', 512),     # the local default: the smallest heap Spark takes (it refuses under 450 MiB)
])
def test_executors_follow_the_workers_memory_with_room_for_python_and_the_jvm(tmp_path, worker_memory, threads, heap_mb):
    env = {
        'PATH': '', 'HOME': str(tmp_path), 'CLUSTER_RUNTIME_DIR': str(tmp_path / 'runtime'), 'CLUSTER_JUPYTER_TOKEN': 't',
        'CLUSTER_SCHEDULER_HOST': 'scheduler.ns.svc', 'CLUSTER_MEMORY': worker_memory, 'CLUSTER_THREADS': threads,
    }
    write_scheduler_files(load(env, 'scheduler'))
    conf = spark_conf(tmp_path / 'runtime' / 'spark-conf' / 'spark-defaults.conf')
    assert conf['spark.executor.memory'] == f'{heap_mb}m'
    assert conf['spark.executor.cores'] == threads

    worker = dataclasses.replace(load(env, 'worker'), spark='on')
    argv = dict(worker_commands(worker))['spark-worker']
    assert argv[argv.index('--memory') + 1] == f'{heap_mb}M', 'each worker offers what its one executor takes'
    assert argv[argv.index('--cores') + 1] == threads

    worker_mb = memory_bytes(worker_memory) >> 20
    if heap_mb > 512:
        jvm_mb = heap_mb + max(384, heap_mb // 10)
        assert jvm_mb <= worker_mb * 0.75, 'the executor JVM, overhead included, leaves a quarter of the worker'
        assert worker_mb - jvm_mb >= 256


def test_the_executor_is_sized_from_the_variables_not_a_fixed_default(tmp_path):
    env = {'PATH': '', 'HOME': str(tmp_path), 'CLUSTER_RUNTIME_DIR': str(tmp_path / 'runtime'), 'CLUSTER_JUPYTER_TOKEN': 't'}
    write_scheduler_files(load(env, 'scheduler'))
    assert spark_conf(tmp_path / 'runtime' / 'spark-conf' / 'spark-defaults.conf')['spark.executor.memory'] == '512m', 'CLUSTER_MEMORY defaults to 1GiB'
    write_scheduler_files(load({**env, 'CLUSTER_MEMORY': '8Gi'}, 'scheduler'))
    assert spark_conf(tmp_path / 'runtime' / 'spark-conf' / 'spark-defaults.conf')['spark.executor.memory'] == '5585m'
