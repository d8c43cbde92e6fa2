"""settings.load: every CLUSTER_* variable parsed, defaulted or refused by name."""
import os
import socket
import stat

import pytest

from settings import SettingsError, ipp_ports, load, memory_bytes

# No java anywhere: Spark decisions are made explicit per test.
NO_JAVA = {'PATH': '', 'HOME': '/home/student'}
KEY = 'k' * 32


def scheduler(**env: str):
    return load({**NO_JAVA, 'CLUSTER_JUPYTER_TOKEN': 'secret', **env}, 'scheduler')


def fake_java(tmp_path) -> str:
    """A JAVA_HOME whose bin/java is executable."""
    java = tmp_path / 'bin' / 'java'
    java.parent.mkdir(parents=True)
    java.write_text('#!/bin/sh\n')
    java.chmod(java.stat().st_mode | stat.S_IXUSR)
    return str(tmp_path)


def test_defaults_serve_one_machine_on_loopback():
    s = scheduler()
    assert (s.bind, s.scheduler_host, s.base_url) == ('127.0.0.1', '127.0.0.1', '/')
    assert (s.jupyter_port, s.dask_port, s.dashboard_port, s.spark_port, s.spark_ui_port) == (8888, 8786, 8787, 7077, 8080)
    assert s.workspace == os.path.join('/home/student', 'work')
    assert s.runtime_dir == os.path.join('/home/student', '.clusterhub')
    assert (s.threads, s.engines, s.memory, s.memory_mb) == (1, 1, '1GiB', 1024)
    assert (s.ipp_ports, s.ipp_key, s.spark, s.stop_grace) == ((), '', 'off', 10.0)


def test_the_scheduler_never_runs_jupyter_without_a_token():
    with pytest.raises(SettingsError, match='^CLUSTER_JUPYTER_TOKEN: required'):
        load(NO_JAVA, 'scheduler')
    assert load(NO_JAVA, 'worker').jupyter_token == ''


def test_the_base_url_must_be_a_path_and_gets_its_trailing_slash():
    assert scheduler(CLUSTER_BASE_URL='/user/alice').base_url == '/user/alice/'
    assert scheduler(CLUSTER_BASE_URL='/user/alice/').base_url == '/user/alice/'
    with pytest.raises(SettingsError, match='^CLUSTER_BASE_URL: must start with /'):
        scheduler(CLUSTER_BASE_URL='user/alice/')


def test_a_wildcard_bind_advertises_the_hostname_not_the_wildcard():
    assert scheduler(CLUSTER_BIND='0.0.0.0').scheduler_host == socket.gethostname()
    assert scheduler(CLUSTER_BIND='::').scheduler_host == socket.gethostname()
    assert scheduler(CLUSTER_BIND='0.0.0.0', CLUSTER_SCHEDULER_HOST='scheduler.ns.svc').scheduler_host == 'scheduler.ns.svc'


def test_spark_runs_when_java_is_found_and_refuses_on_without_java(tmp_path):
    assert scheduler().spark == 'off'
    assert scheduler(JAVA_HOME=fake_java(tmp_path)).spark == 'on'
    assert scheduler(JAVA_HOME=str(tmp_path), CLUSTER_SPARK='off').spark == 'off'
    with pytest.raises(SettingsError, match='^CLUSTER_SPARK=on but no java'):
        scheduler(CLUSTER_SPARK='on')
    with pytest.raises(SettingsError, match="^CLUSTER_SPARK: expected auto, on or off, got 'yes'"):
        scheduler(CLUSTER_SPARK='yes')


def test_java_on_path_counts_too(tmp_path):
    home = fake_java(tmp_path)
    assert scheduler(PATH=os.path.join(home, 'bin')).spark == 'on'


@pytest.mark.parametrize('text, expected', [
    ('1GiB', 1 << 30), ('512MB', 512 << 20), ('2G', 2 << 30), ('1.5g', 3 << 29), ('100', 100), (' 4 Ki ', 4 << 10), ('1TB', 1 << 40),
])
def test_memory_sizes_are_binary_units(text, expected):
    assert memory_bytes(text) == expected


@pytest.mark.parametrize('text', ['', 'lots', '1PB', '-1G', '1 G B'])
def test_a_malformed_memory_size_names_cluster_memory(text):
    with pytest.raises(SettingsError, match='^CLUSTER_MEMORY: expected a size like 1GiB'):
        memory_bytes(text)


def test_memory_mb_is_at_least_one():
    assert scheduler(CLUSTER_MEMORY='4Gi').memory_mb == 4096
    assert scheduler(CLUSTER_MEMORY='1K').memory_mb == 1


def test_ipp_ports_take_ranges_and_lists_in_order():
    assert ipp_ports('') == ()
    assert ipp_ports('10101-10103') == (10101, 10102, 10103)
    assert ipp_ports('10105, 10101-10102,10110') == (10105, 10101, 10102, 10110)


@pytest.mark.parametrize('text, message', [
    ('10101-', 'expected a range like'),
    ('ports', 'expected a range like'),
    ('10103-10101', 'is not a range of ports'),
    ('0-3', 'is not a range of ports'),
    ('65535-65536', 'is not a range of ports'),
    ('10101-10103,10102', 'a port appears twice'),
])
def test_bad_ipp_ports_are_refused_by_name(text, message):
    with pytest.raises(SettingsError, match=f'^CLUSTER_IPP_PORTS: .*{message}'):
        ipp_ports(text)


def test_an_ipp_key_needs_enough_fixed_ports_except_for_the_status_probe():
    s = scheduler(CLUSTER_IPP_KEY=KEY, CLUSTER_IPP_PORTS='10101-10116')
    assert (s.ipp_key, len(s.ipp_ports)) == (KEY, 16)
    with pytest.raises(SettingsError, match='^CLUSTER_IPP_PORTS: with CLUSTER_IPP_KEY, at least 15 fixed ports'):
        load({**NO_JAVA, 'CLUSTER_IPP_KEY': KEY, 'CLUSTER_IPP_PORTS': '10101-10110'}, 'worker')
    assert load({**NO_JAVA, 'CLUSTER_IPP_KEY': KEY}, 'status').ipp_key == KEY


@pytest.mark.parametrize('key', ['short', 'k' * 15, 'with spaces in the key', 'ключ' * 8])
def test_a_weak_or_unprintable_ipp_key_is_refused(key):
    with pytest.raises(SettingsError, match='^CLUSTER_IPP_KEY: expected at least 16 printable ASCII'):
        scheduler(CLUSTER_IPP_KEY=key, CLUSTER_IPP_PORTS='10101-10116')


def test_integers_are_checked_and_named():
    assert scheduler(CLUSTER_THREADS='4', CLUSTER_ENGINES='0', CLUSTER_STOP_GRACE='3').threads == 4
    assert scheduler(CLUSTER_ENGINES='0').engines == 0
    assert scheduler(CLUSTER_STOP_GRACE='3').stop_grace == 3.0
    with pytest.raises(SettingsError, match="^CLUSTER_THREADS: expected an integer, got 'two'"):
        scheduler(CLUSTER_THREADS='two')
    with pytest.raises(SettingsError, match='^CLUSTER_THREADS: must be at least 1, got 0'):
        scheduler(CLUSTER_THREADS='0')
    with pytest.raises(SettingsError, match='^CLUSTER_JUPYTER_PORT: must be at least 1, got 0'):
        scheduler(CLUSTER_JUPYTER_PORT='0')


def test_an_empty_variable_means_its_default():
    s = scheduler(CLUSTER_DASK_PORT='', CLUSTER_THREADS='')
    assert (s.dask_port, s.threads) == (8786, 1)
