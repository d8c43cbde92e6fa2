"""modes: the command lines of the scheduler and of a worker, from the settings alone."""
import dataclasses
import os

import pytest

from modes import CONTROLLER_WAIT_S, scheduler_commands, worker_commands
from settings import load

BASE = {'PATH': '', 'HOME': '/home/student', 'CLUSTER_RUNTIME_DIR': '/run/c', 'CLUSTER_WORKER_NAME': 'worker-3'}


def settings(mode='worker', **env):
    return load({**BASE, 'CLUSTER_JUPYTER_TOKEN': 'secret', **env}, mode)


def by_name(commands):
    names = [name for name, _ in commands]
    assert len(names) == len(set(names)), names
    return dict(commands)


def flag(argv, name):
    """The value after `name` in argv."""
    return argv[argv.index(name) + 1]


def test_the_scheduler_runs_jupyter_dask_and_the_ipython_controller():
    commands = by_name(scheduler_commands(settings('scheduler')))
    assert list(commands) == ['jupyter', 'dask-scheduler', 'ipcontroller']
    assert commands['jupyter'][1:] == ['lab', '--config=/run/c/jupyter_server_config.json']
    assert commands['ipcontroller'][1] == '--profile-dir=/run/c/ipython/profile_default'


def test_the_dask_dashboard_never_leaves_loopback_whatever_the_bind():
    for bind in ('127.0.0.1', '0.0.0.0', '10.1.2.3'):
        argv = by_name(scheduler_commands(settings('scheduler', CLUSTER_BIND=bind)))['dask-scheduler']
        assert flag(argv, '--dashboard-address') == '127.0.0.1:8787'


def test_dask_listens_on_the_bind_or_picks_its_address_on_a_wildcard():
    argv = by_name(scheduler_commands(settings('scheduler', CLUSTER_BIND='10.1.2.3', CLUSTER_DASK_PORT='9000')))['dask-scheduler']
    assert (flag(argv, '--host'), flag(argv, '--port')) == ('10.1.2.3', '9000')
    argv = by_name(scheduler_commands(settings('scheduler', CLUSTER_BIND='0.0.0.0')))['dask-scheduler']
    assert '--host' not in argv


def test_console_scripts_come_from_the_python_that_runs_the_entrypoint():
    import sys
    commands = by_name(scheduler_commands(settings('scheduler')))
    assert os.path.dirname(commands['jupyter'][0]) == os.path.dirname(sys.executable)
    assert os.path.basename(commands['dask-scheduler'][0]) == 'dask'


def test_a_worker_points_every_engine_at_the_scheduler():
    s = settings(CLUSTER_SCHEDULER_HOST='scheduler.ns.svc', CLUSTER_DASK_PORT='8786', CLUSTER_THREADS='2', CLUSTER_MEMORY='2GiB', CLUSTER_ENGINES='3')
    commands = by_name(worker_commands(s))
    assert list(commands) == ['dask-worker', 'ipengine-0', 'ipengine-1', 'ipengine-2']
    dask = commands['dask-worker']
    assert dask[2] == 'tcp://scheduler.ns.svc:8786'
    assert (flag(dask, '--name'), flag(dask, '--nthreads'), flag(dask, '--memory-limit')) == ('worker-3', '2', '2GiB')
    assert flag(dask, '--local-directory') == '/run/c/workers/worker-3/dask'
    # Its HTTP server stays on loopback.
    assert '--no-dashboard' in dask and flag(dask, '--dashboard-address') == '127.0.0.1:0'
    assert flag(dask, '--death-timeout') == '60'


def test_engines_wait_for_the_controller_and_with_a_key_for_its_answer():
    engine = by_name(worker_commands(settings()))['ipengine-0']
    assert f'--IPEngine.wait_for_url_file={CONTROLLER_WAIT_S}' in engine
    assert not any(a.startswith('--IPEngine.timeout=') for a in engine)
    keyed = by_name(worker_commands(settings(CLUSTER_IPP_KEY='k' * 32, CLUSTER_IPP_PORTS='10101-10116')))['ipengine-0']
    assert f'--IPEngine.timeout={CONTROLLER_WAIT_S}' in keyed
    assert CONTROLLER_WAIT_S > 60, 'longer than the Dask worker\'s death timeout'


def test_a_worker_with_no_engines_runs_dask_alone():
    assert list(by_name(worker_commands(settings(CLUSTER_ENGINES='0')))) == ['dask-worker']


def test_spark_joins_both_modes_when_on():
    s = dataclasses.replace(settings('scheduler', CLUSTER_SPARK_PORT='7100', CLUSTER_SPARK_UI_PORT='8100', CLUSTER_BIND='10.1.2.3'), spark='on')
    master = by_name(scheduler_commands(s))['spark-master']
    assert master[0].endswith(os.path.join('bin', 'spark-class'))
    assert master[1] == 'org.apache.spark.deploy.master.Master'
    assert (flag(master, '--host'), flag(master, '--port'), flag(master, '--webui-port')) == ('10.1.2.3', '7100', '8100')

    w = dataclasses.replace(settings(CLUSTER_SCHEDULER_HOST='scheduler.ns.svc', CLUSTER_THREADS='2', CLUSTER_MEMORY='1536MiB'), spark='on')
    worker = by_name(worker_commands(w))['spark-worker']
    assert worker[2] == 'spark://scheduler.ns.svc:7077'
    # It offers its one executor's heap: 1536 MiB less a quarter for Python and 384 MiB of JVM overhead.
    assert (flag(worker, '--cores'), flag(worker, '--memory')) == ('2', '768M')
    assert flag(worker, '--work-dir') == '/run/c/workers/worker-3/spark'


@pytest.mark.parametrize('mode, commands', [('scheduler', scheduler_commands), ('worker', worker_commands)])
def test_spark_off_runs_no_spark(mode, commands):
    assert not any(name.startswith('spark') for name, _ in commands(settings(mode)))
