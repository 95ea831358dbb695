<?php
/**
 * Pressluft's Redis object cache: WordPress's object-cache.php drop-in.
 *
 * Installed by the panel as <environment>/shared/object-cache.php (root's,
 * read-only for the site); every release links wp-content/object-cache.php
 * there, so turning the cache off removes the file and the link points at
 * nothing (WordPress then uses its own per-request cache).
 *
 * It connects as the environment's own Redis user (WP_REDIS_PASSWORD is
 * [user, password], from wp-config.php), whose keys must all start with
 * WP_REDIS_PREFIX ("pressluft_<environment id>:"). A key is
 *
 *     <prefix><generation>:<group>:<key>
 *
 * The environment's user may not list keys (no SCAN, KEYS or FLUSHDB: they
 * would reach other sites), so wp_cache_flush() starts a new generation
 * instead of deleting: the keys of the old one are never read again, Redis
 * evicts them (allkeys-lru) and the panel's purge removes them (SCAN +
 * UNLINK under the prefix, as Redis's administrator). wp_cache_flush_group()
 * does the same for one group: a group once flushed carries its own
 * generation in its keys (<group>@<generation>), all groups' generations
 * kept in one hash read once per request.
 *
 * Behaves as WordPress's WP_Object_Cache does (same return values, objects
 * copied in and out, non-persistent groups kept per request only, global
 * groups shared by every blog of a multisite) and falls back to that
 * per-request behaviour when Redis cannot be reached.
 */

defined('ABSPATH') || exit;

class Pressluft_Object_Cache {
    /** @var array<string, array<string, mixed>> this request's copy: group => key => value */
    public $cache = [];
    public $cache_hits = 0;
    public $cache_misses = 0;
    public $redis_calls = 0;
    public $global_groups = [];
    public $non_persistent_groups = [];
    public $blog_prefix = '';
    public $multisite = false;
    /** @var Redis|null */
    private $redis = null;
    private $prefix = '';
    private $generation = null;
    /** @var array<string, string>|null group => generation, for the groups ever flushed alone */
    private $group_generations = null;

    const GENERATION_KEY = 'generation';
    const GROUP_GENERATIONS_KEY = 'group-generations';

    public function __construct() {
        $this->multisite = is_multisite();
        $this->blog_prefix = $this->multisite ? get_current_blog_id() . ':' : '';
        $this->prefix = defined('WP_REDIS_PREFIX') ? (string) WP_REDIS_PREFIX : '';
        if ($this->prefix !== '' && class_exists('Redis')) {
            $this->connect();
        }
    }

    private function connect(): bool {
        $this->redis = null;
        try {
            $redis = new Redis();
            $host = defined('WP_REDIS_HOST') ? WP_REDIS_HOST : '127.0.0.1';
            $port = defined('WP_REDIS_PORT') ? (int) WP_REDIS_PORT : 6379;
            // A busy node answers late; a reply given up on would leave a write undone (docs/caching.md).
            if (!$redis->connect($host, $port, 1.0, null, 0, 3.0)) {
                return false;
            }
            if (defined('WP_REDIS_PASSWORD') && WP_REDIS_PASSWORD && !$redis->auth(WP_REDIS_PASSWORD)) {
                return false;
            }
            $this->redis = $redis;
            return true;
        } catch (Throwable $e) {
            return false;
        }
    }

    /**
     * One Redis operation: [done, reply]. A dropped connection (Redis drops
     * every client when its users are reloaded) is opened again and the
     * operation repeated once, so a write is not lost and leaves no stale
     * value behind; ``$repeat`` false for what must not run twice (INCRBY).
     */
    private function run(callable $operation, bool $repeat = true): array {
        if ($this->redis === null) {
            return [false, null];
        }
        $this->redis_calls++;
        try {
            return [true, $operation($this->redis)];
        } catch (Throwable $e) {
            if ($repeat && $this->connect()) {
                try {
                    return [true, $operation($this->redis)];
                } catch (Throwable $again) {
                    $e = $again;
                }
            }
            $this->failed($e);
            return [false, null];
        }
    }

    /** Redis is used (false: this request keeps its cache to itself). */
    public function is_connected(): bool {
        return $this->redis !== null;
    }

    private function failed(Throwable $error): void {
        // Whatever Redis could not do, the request goes on without it.
        $this->redis = null;
        error_log('Pressluft object cache: Redis unavailable for the rest of this request: ' . $error->getMessage());
    }

    private function generation(): string {
        if ($this->generation === null) {
            $this->generation = '0';
            [, $value] = $this->run(fn($redis) => $redis->get($this->prefix . self::GENERATION_KEY));
            if (is_string($value) && $value !== '') {
                $this->generation = $value;
            }
        }
        return $this->generation;
    }

    private function group_generation(string $group): string {
        if ($this->group_generations === null) {
            $this->group_generations = [];
            [, $all] = $this->run(fn($redis) => $redis->hGetAll($this->prefix . self::GROUP_GENERATIONS_KEY));
            if (is_array($all)) {
                $this->group_generations = $all;
            }
        }
        return (string) ($this->group_generations[$group] ?? '');
    }

    // --- keys and values ------------------------------------------------------------

    private function valid_key($key): bool {
        if (is_int($key)) {
            return true;
        }
        if (is_string($key) && trim($key) !== '') {
            return true;
        }
        $type = gettype($key);
        if (function_exists('_doing_it_wrong') && function_exists('__')) {
            $message = is_string($key) ? 'Cache key must not be an empty string.'
                : sprintf('Cache key must be an integer or a non-empty string, %s given.', $type);
            _doing_it_wrong(__METHOD__, $message, '6.1.0');
        }
        return false;
    }

    private function group($group): string {
        return empty($group) ? 'default' : (string) $group;
    }

    /** The key within its group: blogs of a multisite share only the global groups. */
    private function id($key, string $group): string {
        if ($this->multisite && !isset($this->global_groups[$group])) {
            return $this->blog_prefix . $key;
        }
        return (string) $key;
    }

    private function persistent(string $group): bool {
        return $this->redis !== null && !isset($this->non_persistent_groups[$group]);
    }

    private function redis_key(string $id, string $group): string {
        // ':', '@' and '%' escaped in the group, so no group/key pair can name another's key.
        $safe_group = str_replace(['%', ':', '@'], ['%25', '%3A', '%40'], $group);
        $group_generation = $this->group_generation($group);
        if ($group_generation !== '') {
            $safe_group .= '@' . $group_generation;
        }
        return $this->prefix . $this->generation() . ':' . $safe_group . ':' . $id;
    }

    private static function encode($value): string {
        // Integers stay plain so that INCRBY and DECRBY work on them.
        return is_int($value) ? (string) $value : serialize($value);
    }

    private static function decode(string $stored) {
        if (preg_match('/^-?[0-9]+$/', $stored)) {
            return (int) $stored;
        }
        return unserialize($stored);
    }

    private static function copy($value) {
        return is_object($value) ? clone $value : $value;
    }

    private function local_has(string $id, string $group): bool {
        return isset($this->cache[$group]) && array_key_exists($id, $this->cache[$group]);
    }

    private function expire_seconds($expire): int {
        $expire = (int) $expire;
        return $expire > 0 ? $expire : 0;
    }

    /** Look up in Redis; [found, value]. */
    private function fetch(string $id, string $group): array {
        $key = $this->redis_key($id, $group);
        [, $stored] = $this->run(fn($redis) => $redis->get($key));
        if (!is_string($stored)) {
            return [false, null];
        }
        return [true, self::decode($stored)];
    }

    private function store(string $id, string $group, $value, int $expire, ?string $condition = null): bool {
        $options = [];
        if ($condition !== null) {
            $options[] = $condition;
        }
        if ($expire > 0) {
            $options['ex'] = $expire;
        }
        $key = $this->redis_key($id, $group);
        $encoded = self::encode($value);
        [$ok, $done] = $this->run(fn($redis) => $options ? $redis->set($key, $encoded, $options)
            : $redis->set($key, $encoded));
        if (!$ok) {
            return $condition === null;
        }
        return (bool) $done;
    }

    // --- the API of WP_Object_Cache ---------------------------------------------------

    public function add($key, $data, $group = 'default', $expire = 0) {
        if (function_exists('wp_suspend_cache_addition') && wp_suspend_cache_addition()) {
            return false;
        }
        if (!$this->valid_key($key)) {
            return false;
        }
        $group = $this->group($group);
        $id = $this->id($key, $group);
        if ($this->local_has($id, $group)) {
            return false;
        }
        if ($this->persistent($group)) {
            if (!$this->store($id, $group, $data, $this->expire_seconds($expire), 'nx')) {
                return false;
            }
        }
        $this->cache[$group][$id] = self::copy($data);
        return true;
    }

    public function add_multiple(array $data, $group = '', $expire = 0) {
        $values = [];
        foreach ($data as $key => $value) {
            $values[$key] = $this->add($key, $value, $group, $expire);
        }
        return $values;
    }

    public function replace($key, $data, $group = 'default', $expire = 0) {
        if (!$this->valid_key($key)) {
            return false;
        }
        $group = $this->group($group);
        $id = $this->id($key, $group);
        if ($this->persistent($group)) {
            $condition = $this->local_has($id, $group) ? null : 'xx';
            if (!$this->store($id, $group, $data, $this->expire_seconds($expire), $condition)) {
                return false;
            }
        } elseif (!$this->local_has($id, $group)) {
            return false;
        }
        $this->cache[$group][$id] = self::copy($data);
        return true;
    }

    public function set($key, $data, $group = 'default', $expire = 0) {
        if (!$this->valid_key($key)) {
            return false;
        }
        $group = $this->group($group);
        $id = $this->id($key, $group);
        if ($this->persistent($group)) {
            $this->store($id, $group, $data, $this->expire_seconds($expire));
        }
        $this->cache[$group][$id] = self::copy($data);
        return true;
    }

    public function set_multiple(array $data, $group = '', $expire = 0) {
        $group = $this->group($group);
        $values = [];
        $pending = [];
        foreach ($data as $key => $value) {
            if (!$this->valid_key($key)) {
                $values[$key] = false;
                continue;
            }
            $id = $this->id($key, $group);
            $this->cache[$group][$id] = self::copy($value);
            $values[$key] = true;
            $pending[$id] = $value;
        }
        if ($pending && $this->persistent($group)) {
            $seconds = $this->expire_seconds($expire);
            $encoded = [];
            foreach ($pending as $id => $value) {
                $encoded[$this->redis_key((string) $id, $group)] = self::encode($value);
            }
            $this->run(function ($redis) use ($encoded, $seconds) {
                $pipe = $redis->multi(Redis::PIPELINE);
                foreach ($encoded as $stored_key => $value) {
                    $seconds > 0 ? $pipe->set($stored_key, $value, ['ex' => $seconds]) : $pipe->set($stored_key, $value);
                }
                return $pipe->exec();
            });
        }
        return $values;
    }

    public function get($key, $group = 'default', $force = false, &$found = null) {
        if (!$this->valid_key($key)) {
            return false;
        }
        $group = $this->group($group);
        $id = $this->id($key, $group);
        if ($this->local_has($id, $group) && !($force && $this->persistent($group))) {
            $found = true;
            $this->cache_hits++;
            return self::copy($this->cache[$group][$id]);
        }
        if ($this->persistent($group)) {
            [$hit, $value] = $this->fetch($id, $group);
            if ($hit) {
                $this->cache[$group][$id] = $value;
                $found = true;
                $this->cache_hits++;
                return self::copy($value);
            }
            unset($this->cache[$group][$id]);
        }
        $found = false;
        $this->cache_misses++;
        return false;
    }

    public function get_multiple($keys, $group = 'default', $force = false) {
        $group = $this->group($group);
        $values = [];
        $missing = [];
        foreach ($keys as $key) {
            if (!$this->valid_key($key)) {
                $values[$key] = false;
                continue;
            }
            $id = $this->id($key, $group);
            if ($this->local_has($id, $group) && !($force && $this->persistent($group))) {
                $this->cache_hits++;
                $values[$key] = self::copy($this->cache[$group][$id]);
            } else {
                $values[$key] = false;
                $missing[$key] = $id;
            }
        }
        if ($missing && $this->persistent($group)) {
            $stored_keys = [];
            foreach ($missing as $id) {
                $stored_keys[] = $this->redis_key((string) $id, $group);
            }
            [, $stored] = $this->run(fn($redis) => $redis->mget($stored_keys));
            $index = 0;
            foreach ($missing as $key => $id) {
                $raw = is_array($stored) ? ($stored[$index] ?? false) : false;
                $index++;
                if (is_string($raw)) {
                    $value = self::decode($raw);
                    $this->cache[$group][$id] = $value;
                    $values[$key] = self::copy($value);
                    $this->cache_hits++;
                    unset($missing[$key]);
                }
            }
        }
        $this->cache_misses += count($missing);
        return $values;
    }

    public function delete($key, $group = 'default', $deprecated = false) {
        if (!$this->valid_key($key)) {
            return false;
        }
        $group = $this->group($group);
        $id = $this->id($key, $group);
        $existed = $this->local_has($id, $group);
        unset($this->cache[$group][$id]);
        if ($this->persistent($group)) {
            $key = $this->redis_key($id, $group);
            [, $deleted] = $this->run(fn($redis) => $redis->del($key));
            $existed = (int) $deleted > 0 || $existed;
        }
        return $existed;
    }

    public function delete_multiple(array $keys, $group = '') {
        $values = [];
        foreach ($keys as $key) {
            $values[$key] = $this->delete($key, $group);
        }
        return $values;
    }

    private function offset_by($key, int $offset, $group) {
        if (!$this->valid_key($key)) {
            return false;
        }
        $group = $this->group($group);
        $id = $this->id($key, $group);
        $known = $this->local_has($id, $group);
        $value = $known ? $this->cache[$group][$id] : null;
        if ($this->persistent($group)) {
            [$hit, $stored] = $this->fetch($id, $group);
            if (!$hit) {
                unset($this->cache[$group][$id]);
                return false;
            }
            if (is_int($stored)) {
                // Atomic between requests (and never repeated); below zero is zero, as in WordPress.
                $key = $this->redis_key($id, $group);
                [$ok, $value] = $this->run(fn($redis) => $redis->incrBy($key, $offset), false);
                if ($ok && is_int($value)) {
                    if ($value < 0) {
                        $value = 0;
                        $this->run(fn($redis) => $redis->set($key, '0', ['keepttl']));
                    }
                    $this->cache[$group][$id] = $value;
                    return $value;
                }
            }
            $value = $stored;
        } elseif (!$known) {
            return false;
        }
        if (!is_numeric($value)) {
            $value = 0;
        }
        $value += $offset;
        if ($value < 0) {
            $value = 0;
        }
        if ($this->persistent($group)) {
            $key = $this->redis_key($id, $group);
            $encoded = self::encode($value);
            $this->run(fn($redis) => $redis->set($key, $encoded, ['keepttl']));
        }
        $this->cache[$group][$id] = $value;
        return $value;
    }

    public function incr($key, $offset = 1, $group = 'default') {
        return $this->offset_by($key, (int) $offset, $group);
    }

    public function decr($key, $offset = 1, $group = 'default') {
        return $this->offset_by($key, -(int) $offset, $group);
    }

    /** Everything of this environment, in Redis too: a new generation of keys. */
    public function flush() {
        $this->cache = [];
        if ($this->redis !== null) {
            $generation = bin2hex(random_bytes(8));
            [$ok] = $this->run(fn($redis) => $redis->set($this->prefix . self::GENERATION_KEY, $generation));
            if (!$ok) {
                return false;
            }
            $this->generation = $generation;
        }
        return true;
    }

    /** One group, in Redis too: a new generation of that group's keys. */
    public function flush_group($group) {
        $group = $this->group($group);
        unset($this->cache[$group]);
        if (!$this->persistent($group)) {
            return true;
        }
        $this->group_generation($group);
        $generation = bin2hex(random_bytes(8));
        [$ok] = $this->run(fn($redis) => $redis->hSet($this->prefix . self::GROUP_GENERATIONS_KEY, $group,
            $generation));
        if (!$ok) {
            return false;
        }
        $this->group_generations[$group] = $generation;
        return true;
    }

    public function flush_runtime() {
        $this->cache = [];
        return true;
    }

    public function add_global_groups($groups) {
        foreach ((array) $groups as $group) {
            $this->global_groups[$group] = true;
        }
    }

    public function add_non_persistent_groups($groups) {
        foreach ((array) $groups as $group) {
            $this->non_persistent_groups[$group] = true;
        }
    }

    public function switch_to_blog($blog_id) {
        $this->blog_prefix = $this->multisite ? ((int) $blog_id) . ':' : '';
    }

    public function reset() {
        // Deprecated in WordPress: forget this blog's non-global data of the request.
        foreach (array_keys($this->cache) as $group) {
            if (!isset($this->global_groups[$group])) {
                unset($this->cache[$group]);
            }
        }
    }

    public function close() {
        if ($this->redis !== null) {
            try {
                $this->redis->close();
            } catch (Throwable $e) {
            }
            $this->redis = null;
        }
        return true;
    }

    public function stats() {
        echo '<p><strong>Cache hits:</strong> ' . (int) $this->cache_hits . '<br />';
        echo '<strong>Cache misses:</strong> ' . (int) $this->cache_misses . '<br />';
        echo '<strong>Redis:</strong> ' . ($this->redis !== null ? 'connected' : 'not used') . '</p>';
    }
}

function wp_cache_init() {
    $GLOBALS['wp_object_cache'] = new Pressluft_Object_Cache();
}

function wp_cache_supports($feature) {
    switch ($feature) {
        case 'add_multiple':
        case 'set_multiple':
        case 'get_multiple':
        case 'delete_multiple':
        case 'flush_runtime':
        case 'flush_group':
            return true;
        default:
            return false;
    }
}

function wp_cache_add($key, $data, $group = '', $expire = 0) {
    global $wp_object_cache;
    return $wp_object_cache->add($key, $data, $group, (int) $expire);
}

function wp_cache_add_multiple(array $data, $group = '', $expire = 0) {
    global $wp_object_cache;
    return $wp_object_cache->add_multiple($data, $group, $expire);
}

function wp_cache_replace($key, $data, $group = '', $expire = 0) {
    global $wp_object_cache;
    return $wp_object_cache->replace($key, $data, $group, (int) $expire);
}

function wp_cache_set($key, $data, $group = '', $expire = 0) {
    global $wp_object_cache;
    return $wp_object_cache->set($key, $data, $group, (int) $expire);
}

function wp_cache_set_multiple(array $data, $group = '', $expire = 0) {
    global $wp_object_cache;
    return $wp_object_cache->set_multiple($data, $group, $expire);
}

function wp_cache_get($key, $group = '', $force = false, &$found = null) {
    global $wp_object_cache;
    return $wp_object_cache->get($key, $group, $force, $found);
}

function wp_cache_get_multiple($keys, $group = '', $force = false) {
    global $wp_object_cache;
    return $wp_object_cache->get_multiple($keys, $group, $force);
}

function wp_cache_delete($key, $group = '') {
    global $wp_object_cache;
    return $wp_object_cache->delete($key, $group);
}

function wp_cache_delete_multiple(array $keys, $group = '') {
    global $wp_object_cache;
    return $wp_object_cache->delete_multiple($keys, $group);
}

function wp_cache_incr($key, $offset = 1, $group = '') {
    global $wp_object_cache;
    return $wp_object_cache->incr($key, $offset, $group);
}

function wp_cache_decr($key, $offset = 1, $group = '') {
    global $wp_object_cache;
    return $wp_object_cache->decr($key, $offset, $group);
}

function wp_cache_flush() {
    global $wp_object_cache;
    return $wp_object_cache->flush();
}

function wp_cache_flush_group($group) {
    global $wp_object_cache;
    return $wp_object_cache->flush_group($group);
}

function wp_cache_flush_runtime() {
    global $wp_object_cache;
    return $wp_object_cache->flush_runtime();
}

function wp_cache_close() {
    global $wp_object_cache;
    return $wp_object_cache->close();
}

function wp_cache_add_global_groups($groups) {
    global $wp_object_cache;
    $wp_object_cache->add_global_groups($groups);
}

function wp_cache_add_non_persistent_groups($groups) {
    global $wp_object_cache;
    $wp_object_cache->add_non_persistent_groups($groups);
}

function wp_cache_switch_to_blog($blog_id) {
    global $wp_object_cache;
    $wp_object_cache->switch_to_blog($blog_id);
}

function wp_cache_reset() {
    _deprecated_function(__FUNCTION__, '3.5.0', 'wp_cache_switch_to_blog()');
    global $wp_object_cache;
    $wp_object_cache->reset();
}
