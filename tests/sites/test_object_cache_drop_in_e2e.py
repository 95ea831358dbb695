"""Pressluft's object-cache.php drop-in answers as WordPress's own object
cache does: one scenario of wp_cache_* calls (groups, objects copied in and
out, false as a value, add/replace, incr/decr, the multiple variants, the
default group, non-persistent groups, flush, flush of one group) runs inside one request of a
real site against both WP_Object_Cache and the drop-in, and every answer is
the same. Beyond one request, only the drop-in remembers (not the
non-persistent groups), and its flush forgets for the next request too."""

from pathlib import Path

import pytest

from apps.environments import naming
from apps.jobs import runner
from apps.sites.models import Site
from tests.sites.test_cache_e2e import keys_of
from tests.sites.test_php_pool_isolation_e2e import php_probe
from tests.sites.test_site_lifecycle_e2e import create_site

pytestmark = pytest.mark.django_db(transaction=True)

COMPARE = r"""<?php
require __DIR__ . '/wp-load.php';
require_once ABSPATH . WPINC . '/class-wp-object-cache.php';

function pl_scenario(): array {
    $r = [];
    wp_cache_flush();
    $r['add'] = wp_cache_add('k1', 'v1', 'pl-test');
    $r['add again'] = wp_cache_add('k1', 'v2', 'pl-test');
    $r['get'] = [wp_cache_get('k1', 'pl-test', false, $found), $found];
    $r['get missing'] = [wp_cache_get('missing', 'pl-test', false, $found), $found];
    $r['replace'] = wp_cache_replace('k1', 'v3', 'pl-test');
    $r['replace missing'] = wp_cache_replace('nope', 'v3', 'pl-test');
    $r['after replace'] = wp_cache_get('k1', 'pl-test');
    $object = new stdClass();
    $object->a = 1;
    $r['set object'] = wp_cache_set('obj', $object, 'pl-test');
    $object->a = 2;
    $copy = wp_cache_get('obj', 'pl-test');
    $r['object copied in'] = $copy->a;
    $copy->a = 3;
    $r['object copied out'] = wp_cache_get('obj', 'pl-test')->a;
    $r['set false'] = wp_cache_set('f', false, 'pl-test');
    $r['get false'] = [wp_cache_get('f', 'pl-test', false, $found), $found];
    $r['set null'] = wp_cache_set('nul', null, 'pl-test');
    $r['get null'] = [wp_cache_get('nul', 'pl-test', false, $found), $found];
    $r['set array'] = wp_cache_set('arr', ['x' => [1, 2.5, 'three'], 'y' => true], 'pl-test');
    $r['get array'] = wp_cache_get('arr', 'pl-test');
    $r['set int'] = wp_cache_set('n', 5, 'pl-test');
    $r['incr'] = wp_cache_incr('n', 3, 'pl-test');
    $r['decr below zero'] = wp_cache_decr('n', 10, 'pl-test');
    $r['after decr'] = wp_cache_get('n', 'pl-test');
    $r['incr again'] = wp_cache_incr('n', 1, 'pl-test');
    $r['decr'] = wp_cache_decr('n', 1, 'pl-test');
    $r['incr missing'] = wp_cache_incr('nope', 1, 'pl-test');
    $r['decr missing'] = wp_cache_decr('nope', 1, 'pl-test');
    wp_cache_set('s', 'abc', 'pl-test');
    $r['incr text'] = wp_cache_incr('s', 2, 'pl-test');
    wp_cache_set('fl', 1.5, 'pl-test');
    $r['incr float'] = wp_cache_incr('fl', 1, 'pl-test');
    wp_cache_set('ns', '7', 'pl-test');
    $r['incr numeric text'] = wp_cache_incr('ns', 1, 'pl-test');
    $r['int-looking text'] = [wp_cache_set('it', '42', 'pl-test'), wp_cache_get('it', 'pl-test')];
    $r['int key'] = [wp_cache_set(7, 'seven', 'pl-test'), wp_cache_get(7, 'pl-test'), wp_cache_get('7', 'pl-test')];
    $r['set multiple'] = wp_cache_set_multiple(['a' => 1, 'b' => [1, 2], 'c' => null], 'pl-multi');
    $r['get multiple'] = wp_cache_get_multiple(['a', 'b', 'c', 'zz'], 'pl-multi');
    $r['add multiple'] = wp_cache_add_multiple(['a' => 9, 'd' => 4], 'pl-multi');
    $r['delete multiple'] = wp_cache_delete_multiple(['a', 'zz'], 'pl-multi');
    $r['get multiple after'] = wp_cache_get_multiple(['a', 'd'], 'pl-multi');
    $r['delete'] = wp_cache_delete('k1', 'pl-test');
    $r['delete again'] = wp_cache_delete('k1', 'pl-test');
    $r['empty key'] = [wp_cache_set('', 'x', 'pl-test'), wp_cache_get('', 'pl-test'), wp_cache_add(' ', 'x')];
    $r['default group'] = [wp_cache_set('dk', 'in default'), wp_cache_get('dk', 'default'), wp_cache_get('dk', '')];
    $r['groups apart'] = [wp_cache_set('same', 'one', 'pl-g1'), wp_cache_set('same', 'two', 'pl-g2'),
                          wp_cache_get('same', 'pl-g1'), wp_cache_get('same', 'pl-g2')];
    $r['colon in group'] = [wp_cache_set('b:c', 'first', 'pl-a'), wp_cache_set('c', 'second', 'pl-a:b'),
                            wp_cache_get('b:c', 'pl-a'), wp_cache_get('c', 'pl-a:b')];
    $r['expiring'] = [wp_cache_set('e', 'soon', 'pl-test', 3600), wp_cache_get('e', 'pl-test')];
    if ($GLOBALS['wp_object_cache'] instanceof Pressluft_Object_Cache) {
        // WordPress's own cache keeps every group for the request only (its function does nothing).
        wp_cache_add_non_persistent_groups(['pl-np']);
    }
    $r['non-persistent'] = [wp_cache_set('np', 'x', 'pl-np'), wp_cache_get('np', 'pl-np')];
    wp_suspend_cache_addition(true);
    $r['add suspended'] = wp_cache_add('sus', 'x', 'pl-test');
    wp_suspend_cache_addition(false);
    $r['supports'] = [wp_cache_supports('get_multiple'), wp_cache_supports('set_multiple'),
                      wp_cache_supports('add_multiple'), wp_cache_supports('delete_multiple'),
                      wp_cache_supports('flush_runtime'), wp_cache_supports('flush_group')];
    wp_cache_set('a', 'gone', 'pl-flushed');
    wp_cache_set('a', 'kept', 'pl-kept');
    wp_cache_set('b', 'request only', 'pl-np');
    $r['flush group'] = [wp_cache_flush_group('pl-flushed'), wp_cache_flush_group('pl-np'),
                         wp_cache_get('a', 'pl-flushed', false, $found), $found, wp_cache_get('a', 'pl-kept'),
                         wp_cache_get('b', 'pl-np', false, $found), $found,
                         wp_cache_set('a', 'again', 'pl-flushed'), wp_cache_get('a', 'pl-flushed')];
    $r['flush'] = wp_cache_flush();
    $r['after flush'] = [wp_cache_get('obj', 'pl-test', false, $found), $found,
                         wp_cache_get_multiple(['b', 'd'], 'pl-multi')];
    // WordPress's own wp_cache_flush_runtime() is its wp_cache_flush().
    $r['flush runtime'] = [wp_cache_set('rt', 'x', 'pl-test'), $GLOBALS['wp_object_cache'] instanceof
                           Pressluft_Object_Cache ? wp_cache_flush_runtime() : wp_cache_flush(),
                           wp_cache_get('rt', 'pl-test', false, $found), $found];
    return $r;
}

$drop_in = $GLOBALS['wp_object_cache'];
$GLOBALS['wp_object_cache'] = new WP_Object_Cache();
$wordpress = pl_scenario();
$GLOBALS['wp_object_cache'] = $drop_in;
$ours = pl_scenario();

// The next request: a new cache object, as a new PHP request has.
wp_cache_set('persist', ['kept' => 1], 'pl-test');
wp_cache_set('np2', 'request only', 'pl-np');
wp_cache_set('counter', 10, 'pl-test');
wp_cache_set('gone', 1, 'pl-group');
wp_cache_set('kept', 2, 'pl-other');
wp_cache_flush_group('pl-group');
wp_cache_set('back', 3, 'pl-group');
$next = new Pressluft_Object_Cache();
$next->add_non_persistent_groups(['pl-np']);
$next_request = [
    'persistent' => [$next->get('persist', 'pl-test', false, $found), $found],
    'non-persistent' => [$next->get('np2', 'pl-np', false, $found), $found],
    'counter' => [$next->incr('counter', 5, 'pl-test'), wp_cache_get('counter', 'pl-test', true)],
    'group flushed' => [$next->get('gone', 'pl-group', false, $found), $found, $next->get('back', 'pl-group'),
                        $next->get('kept', 'pl-other')],
];
wp_cache_flush();
$connected_after = $drop_in->is_connected();
// Redis drops its clients (as ACL LOAD does): the next write still reaches it.
$hang_up = Closure::bind(function () { $this->redis->rawCommand('QUIT'); }, $drop_in, Pressluft_Object_Cache::class);
$hang_up();
$next_request['write after a dropped connection'] = [wp_cache_set('after-drop', 'kept', 'pl-test'),
    (new Pressluft_Object_Cache())->get('after-drop', 'pl-test', false, $found), $found, $drop_in->is_connected()];
$after = new Pressluft_Object_Cache();
$next_request['after flush'] = [$after->get('persist', 'pl-test', false, $found), $found];
echo 'ANSWER:' . json_encode([
    'class' => get_class($drop_in), 'connected' => $connected_after,
    'wordpress' => $wordpress, 'ours' => $ours, 'next' => $next_request,
]);
"""


@pytest.fixture
def site(api_client, local_node):
    site, environment = create_site(api_client, "Drop In Deli", "dropindeli")
    yield environment
    if Site.objects.filter(pk=site.pk).exists():
        runner.run_job(api_client.delete(f"/api/sites/{site.id}").json()["job_id"])


def test_drop_in_answers_like_wordpress_own_object_cache(site):
    try:
        answer = php_probe(site, COMPARE)
    except AssertionError:
        log = Path(naming.root(site)) / "logs" / "php-error.log"
        raise AssertionError(log.read_text()[-3000:] if log.exists() else "no PHP error log") from None
    # Still connected after the whole scenario: no answer came from a fallback to the request's own cache.
    assert answer["class"] == "Pressluft_Object_Cache" and answer["connected"] is True
    wordpress, ours = answer["wordpress"], answer["ours"]
    assert list(ours) == list(wordpress)
    # Forgetting the request's copy: WordPress forgets all it has, the drop-in still has Redis.
    assert wordpress["flush runtime"] == [True, True, False, False]
    assert ours.pop("flush runtime") == [True, True, "x", True]
    wordpress.pop("flush runtime")
    assert {name: (ours[name], wordpress[name]) for name in wordpress if ours[name] != wordpress[name]} == {}
    # A few answers spelled out, so that both cannot agree on something wrong.
    assert wordpress["add"] is True and wordpress["add again"] is False
    assert wordpress["object copied in"] == 1 and wordpress["object copied out"] == 1
    assert wordpress["get false"] == [False, True] and wordpress["decr below zero"] == 0
    assert wordpress["colon in group"] == [True, True, "first", "second"]
    assert wordpress["flush group"] == [True, True, False, False, "kept", False, False, True, "again"]

    assert answer["next"] == {
        "persistent": [{"kept": 1}, True],
        "non-persistent": [False, False],
        "counter": [15, 15],
        "group flushed": [False, False, 3, 2],
        "write after a dropped connection": [True, "kept", True, True],
        "after flush": [False, False],
    }
    prefix = naming.redis_key_prefix(site)
    keys = keys_of(site)
    assert keys and all(key.startswith(prefix) for key in keys)
    assert not any(":pl-np:" in key for key in keys)  # non-persistent groups never reach Redis
