<?php
/**
 * Pressluft's WordPress helper: loads one WordPress installation and calls
 * WordPress's own functions. It replaces WP-CLI for the few things the panel
 * needs. Run as the environment's Linux user:
 *
 *     php pressluft-wp.php < request.json
 *
 * The request is one JSON object: {"root": "<environment root>", "command": "...", ...}.
 * The answer is one JSON object on stdout: {"ok": true, ...} or
 * {"ok": false, "error": "..."} with exit code 1. Nothing from the request is
 * ever evaluated as code or passed to a shell.
 *
 * The site's plugins run in this process: they can print to stdout and stderr,
 * or an answer of their own, and "error" can carry WordPress's or the
 * database's wording. The node side (wp_helper_client.py) treats all of it as
 * the site's text: bounded, on one line, never the error message as it is.
 */

error_reporting(E_ALL & ~E_DEPRECATED & ~E_NOTICE & ~E_WARNING);
ini_set('display_errors', 'stderr');

function pl_answer(array $data, int $exit = 0): void {
    fwrite(STDOUT, json_encode($data, JSON_UNESCAPED_SLASHES) . "\n");
    exit($exit);
}

function pl_fail(string $message): void {
    pl_answer(['ok' => false, 'error' => $message], 1);
}

/** Ask the update API the panel names instead of WordPress.org's (the default asks WordPress.org itself). */
function pl_update_api(string $api): void {
    $api = rtrim($api, '/') . '/';
    $origins = ['https://api.wordpress.org/', 'http://api.wordpress.org/'];
    if ($api === '/' || in_array($api, $origins, true)) {
        return;
    }
    add_filter('pre_http_request', function ($pre, $args, $url) use ($api, $origins) {
        static $inside = false;
        if ($inside || !is_string($url)) {
            return $pre;
        }
        foreach ($origins as $origin) {
            if (strpos($url, $origin) === 0) {
                $inside = true;
                $answer = wp_remote_request($api . substr($url, strlen($origin)), $args);
                $inside = false;
                return $answer;
            }
        }
        return $pre;
    }, 10, 3);
}

/** Core, plugins and themes: installed version and (when $offers) what the update check offers. */
function pl_components(bool $offers): array {
    global $wp_version;
    $core = ['installed' => $wp_version, 'available' => null, 'package' => null];
    if ($offers) {
        foreach ((array) get_core_updates() as $offer) {
            if (is_object($offer) && ($offer->response ?? '') === 'upgrade'
                && version_compare((string) $offer->current, $wp_version, '>')) {
                $core['available'] = (string) $offer->current;
                $core['package'] = (string) ($offer->packages->full ?? $offer->download ?? '');
                $core['php_version'] = (string) ($offer->php_version ?? '');
                $core['mysql_version'] = (string) ($offer->mysql_version ?? '');
                break;
            }
        }
    }
    $plugin_updates = $offers ? get_site_transient('update_plugins') : null;
    $plugins = [];
    foreach (get_plugins() as $file => $data) {
        $row = ['file' => (string) $file, 'name' => (string) $data['Name'], 'installed' => (string) $data['Version'],
                'available' => null, 'package' => null, 'active' => is_plugin_active($file)];
        $offer = is_object($plugin_updates) ? ($plugin_updates->response[$file] ?? null) : null;
        if (is_object($offer) && isset($offer->new_version)) {
            $row['available'] = (string) $offer->new_version;
            $row['package'] = (string) ($offer->package ?? '');
        }
        $plugins[] = $row;
    }
    $theme_updates = $offers ? get_site_transient('update_themes') : null;
    $themes = [];
    foreach (wp_get_themes() as $stylesheet => $theme) {
        $row = ['stylesheet' => (string) $stylesheet, 'name' => (string) $theme->get('Name'),
                'installed' => (string) $theme->get('Version'), 'available' => null, 'package' => null,
                'active' => $stylesheet === get_stylesheet()];
        $offer = is_object($theme_updates) ? ($theme_updates->response[$stylesheet] ?? null) : null;
        if (is_array($offer) && isset($offer['new_version'])) {
            $row['available'] = (string) $offer['new_version'];
            $row['package'] = (string) ($offer['package'] ?? '');
        }
        $themes[] = $row;
    }
    $latest = get_posts(['numberposts' => 1, 'post_status' => 'publish', 'post_type' => 'post',
                         'orderby' => 'date', 'order' => 'DESC']);
    return ['core' => $core, 'plugins' => $plugins, 'themes' => $themes,
            'latest_post_url' => $latest ? (string) get_permalink($latest[0]) : null];
}

/** Run WordPress's upgraders over the packages of $request['packages'] (local paths). */
function pl_apply_updates(array $request): array {
    $packages = $request['packages'] ?? [];
    // The node decides what may change (the release is a copy, sealed afterwards);
    // DISALLOW_FILE_MODS keeps the live site from changing its own code.
    add_filter('file_mod_allowed', '__return_true', 100);
    add_filter('filesystem_method', function () { return 'pressluft'; }, 100);
    add_filter('request_filesystem_credentials', '__return_true', 100);
    // The database is upgraded by the panel after the switch, with the new code;
    // translations are not fetched unchecked by the node.
    add_filter('pre_http_request', function ($pre, $args, $url) {
        return is_string($url) && strpos($url, 'upgrade.php?step=upgrade_db') !== false
            ? new WP_Error('pressluft', 'database upgrade runs after the switch') : $pre;
    }, 5, 3);
    remove_action('upgrader_process_complete', ['Language_Pack_Upgrader', 'async_upgrade'], 20);
    remove_action('upgrader_process_complete', 'wp_version_check');
    $results = [];
    $outcome = function ($result) {
        if (is_wp_error($result)) {
            $data = $result->get_error_data();
            return ['ok' => false, 'error' => $result->get_error_message() . (is_string($data) ? ' (' . $data . ')' : '')];
        }
        return ['ok' => $result !== false && $result !== null];
    };
    if (!empty($packages['core'])) {
        $core = $packages['core'];
        $offer = (object) [
            'response' => 'upgrade', 'download' => (string) $core['package'], 'locale' => get_locale(),
            'packages' => (object) ['full' => (string) $core['package'], 'no_content' => '', 'new_bundled' => '',
                                    'partial' => '', 'rollback' => ''],
            'current' => (string) $core['version'], 'version' => (string) $core['version'],
            'php_version' => (string) ($core['php_version'] ?? ''), 'mysql_version' => (string) ($core['mysql_version'] ?? ''),
            'new_bundled' => '', 'partial_version' => '',
        ];
        $upgrader = new Core_Upgrader(new Automatic_Upgrader_Skin());
        $results['core'] = $outcome($upgrader->upgrade($offer, ['pre_check_md5' => false]));
    }
    if (!empty($packages['plugins'])) {
        $offers = (object) ['last_checked' => time(), 'response' => [], 'translations' => [], 'no_update' => []];
        foreach ($packages['plugins'] as $file => $plugin) {
            $offers->response[$file] = (object) ['plugin' => $file, 'slug' => dirname($file),
                'new_version' => (string) $plugin['version'], 'package' => (string) $plugin['package']];
        }
        add_filter('pre_site_transient_update_plugins', function () use ($offers) { return $offers; });
        $upgrader = new Plugin_Upgrader(new Automatic_Upgrader_Skin());
        foreach ((array) $upgrader->bulk_upgrade(array_keys($packages['plugins'])) as $file => $result) {
            $results['plugin:' . $file] = $outcome($result);
        }
    }
    if (!empty($packages['themes'])) {
        $offers = (object) ['last_checked' => time(), 'response' => [], 'translations' => [], 'no_update' => []];
        foreach ($packages['themes'] as $stylesheet => $theme) {
            $offers->response[$stylesheet] = ['theme' => $stylesheet, 'new_version' => (string) $theme['version'],
                                              'package' => (string) $theme['package']];
        }
        add_filter('pre_site_transient_update_themes', function () use ($offers) { return $offers; });
        $upgrader = new Theme_Upgrader(new Automatic_Upgrader_Skin());
        foreach ((array) $upgrader->bulk_upgrade(array_keys($packages['themes'])) as $stylesheet => $result) {
            $results['theme:' . $stylesheet] = $outcome($result);
        }
    }
    return $results;
}

$request = json_decode(stream_get_contents(STDIN), true);
if (!is_array($request) || !isset($request['command'], $request['root'])) {
    pl_fail('request must be a JSON object with command and root');
}
$command = (string) $request['command'];
$wp_root = rtrim((string) $request['root'], '/') . '/current';
if (isset($request['release'])) {
    // A release not switched to yet: checked before it goes live.
    $release = realpath((string) $request['release']);
    $releases = realpath(rtrim((string) $request['root'], '/') . '/releases');
    if ($release === false || $releases === false || strpos($release, $releases . '/') !== 0) {
        pl_fail('release must be a directory under the environment\'s releases/');
    }
    $wp_root = $release;
}
if (!is_file($wp_root . '/wp-load.php')) {
    pl_fail('no WordPress at ' . $wp_root);
}

// WordPress expects a web request; give it the environment's own host.
$url = isset($request['url']) ? (string) $request['url'] : '';
$parts = $url !== '' ? parse_url($url) : false;
$_SERVER['HTTP_HOST'] = $parts && isset($parts['host']) ? $parts['host'] : 'localhost';
$_SERVER['SERVER_NAME'] = $_SERVER['HTTP_HOST'];
$_SERVER['REQUEST_URI'] = '/';
$_SERVER['SERVER_PROTOCOL'] = 'HTTP/1.1';
$_SERVER['REQUEST_METHOD'] = 'GET';
if ($parts && ($parts['scheme'] ?? '') === 'https') {
    $_SERVER['HTTPS'] = 'on';
}

if ($command === 'install') {
    define('WP_INSTALLING', true);
    // No mail on a fresh install: nodes may have no mail transport, and the
    // operator logs in through the panel anyway.
    function wp_new_blog_notification($blog_title, $blog_url, $user_id, $password) {}
}

if ($command === 'run-held') {
    // The staging must-use plugin lifts its hold on WP-Cron and the Action
    // Scheduler for this one process (its payment and outgoing-request holds stay).
    define('PRESSLUFT_RUN_HELD', true);
}

chdir($wp_root);
require $wp_root . '/wp-load.php';

/** Due WP-Cron events (read past the staging hold) and due pending Action Scheduler actions (null: no such table). */
function pl_due_work(): array {
    global $wpdb;
    $events = 0;
    $crons = _get_cron_array();
    foreach (is_array($crons) ? $crons : [] as $timestamp => $hooks) {
        if (is_numeric($timestamp) && (int) $timestamp <= time() && is_array($hooks)) {
            foreach ($hooks as $instances) {
                $events += is_array($instances) ? count($instances) : 0;
            }
        }
    }
    $table = $wpdb->prefix . 'actionscheduler_actions';
    $actions = null;
    if ($wpdb->get_var($wpdb->prepare('SHOW TABLES LIKE %s', $wpdb->esc_like($table))) === $table) {
        $actions = (int) $wpdb->get_var("SELECT COUNT(*) FROM `{$table}` WHERE status = 'pending' AND scheduled_date_gmt <= UTC_TIMESTAMP()");
    }
    return ['cron_events' => $events, 'scheduled_actions' => $actions];
}

switch ($command) {
    case 'is-installed':
        pl_answer(['ok' => true, 'installed' => (bool) is_blog_installed()]);

    case 'install':
        require_once ABSPATH . 'wp-admin/includes/upgrade.php';
        if (is_blog_installed()) {
            pl_answer(['ok' => true, 'installed' => true, 'changed' => false]);
        }
        $result = wp_install(
            (string) $request['title'],
            (string) $request['admin_user'],
            (string) $request['admin_email'],
            true,
            '',
            (string) $request['admin_password']
        );
        if (is_wp_error($result)) {
            pl_fail($result->get_error_message());
        }
        update_option('siteurl', $url);
        update_option('home', $url);
        pl_answer(['ok' => true, 'installed' => true, 'changed' => true, 'user_id' => $result['user_id']]);

    case 'health':
        // db-check and is-installed in one WordPress load (the health check's node part).
        global $wpdb;
        $value = $wpdb->get_var('SELECT 1');
        if ($value !== '1') {
            pl_answer(['ok' => false, 'database' => false, 'installed' => false, 'error' => $wpdb->last_error]);
        }
        pl_answer(['ok' => true, 'database' => true, 'installed' => (bool) is_blog_installed(), 'error' => '']);

    case 'db-check':
        global $wpdb;
        $value = $wpdb->get_var('SELECT 1');
        pl_answer(['ok' => $value === '1', 'database' => $value === '1', 'error' => $wpdb->last_error]);

    case 'option-get':
        $name = (string) $request['name'];
        pl_answer(['ok' => true, 'name' => $name, 'value' => get_option($name, null)]);

    case 'option-set':
        $name = (string) $request['name'];
        update_option($name, $request['value']);
        pl_answer(['ok' => true, 'name' => $name]);

    case 'login-token':
        // A one-time token for the must-use login plugin: only its hash is
        // stored, with the user and an expiry; the plugin deletes the row
        // atomically, so one request at most can use it.
        $admins = get_users(['role' => 'administrator', 'orderby' => 'ID', 'order' => 'ASC', 'number' => 1, 'fields' => 'ID']);
        if (!$admins) {
            pl_fail('the site has no administrator');
        }
        $token = bin2hex(random_bytes(24));
        $lifetime = isset($request['lifetime']) ? max(1, (int) $request['lifetime']) : 60;
        $expires = time() + $lifetime;
        add_option('pressluft_login_' . hash('sha256', $token), wp_json_encode(['user' => (int) $admins[0], 'expires' => $expires]), '', 'no');
        pl_answer(['ok' => true, 'token' => $token, 'expires' => $expires, 'login_url' => add_query_arg('pressluft_login', $token, home_url('/'))]);

    case 'send-test-mail':
        // Sends one mail the way any plugin would, so a test (or an operator)
        // can see whether this environment lets mail out or holds it.
        $sent = wp_mail((string) $request['to'], (string) $request['subject'], (string) ($request['message'] ?? ''));
        pl_answer(['ok' => true, 'sent' => (bool) $sent]);

    case 'held-mail':
        // What the staging must-use plugin held back, newest first. It keeps
        // the mails in a non-autoloaded option, oldest first; production (and
        // an environment that never held a mail) has none, which is no error.
        $limit = $request['limit'] ?? 50;
        if (!is_int($limit) || $limit < 1 || $limit > 500) {
            pl_fail('limit must be an integer from 1 to 500');
        }
        $held = get_option('pressluft_held_mail', []);
        $mails = [];
        foreach (array_reverse(is_array($held) ? array_values($held) : []) as $entry) {
            if (count($mails) >= $limit) {
                break;
            }
            if (!is_array($entry)) {
                continue;  // a hand-edited or foreign row: skipped rather than failing the whole list
            }
            $text = function ($key) use ($entry) {
                return isset($entry[$key]) && is_scalar($entry[$key]) ? (string) $entry[$key] : '';
            };
            // Records held before bodies were kept have none: an empty excerpt.
            $body = $text('message');
            $body = trim(preg_replace('/\s+/u', ' ', wp_strip_all_tags($body)) ?? '');
            $mails[] = [
                'time' => $text('time'),
                'to' => $text('to'),
                'subject' => $text('subject'),
                'excerpt' => mb_substr($body, 0, 200),
            ];
        }
        pl_answer(['ok' => true, 'mails' => $mails, 'held' => is_array($held) ? count($held) : 0]);

    case 'staging-holds':
        // Which holds the staging must-use plugin has on in this environment
        // (none in production, where it is inert), and the work they hold back.
        // (PHP declares the plugin's functions even where it returns early: the constant decides.)
        $staging = defined('PRESSLUFT_STAGING') && PRESSLUFT_STAGING;
        $holds = $staging && function_exists('pressluft_staging_holds') ? pressluft_staging_holds() : null;
        pl_answer(['ok' => true, 'holds' => $holds, 'due' => pl_due_work()]);

    case 'run-held':
        // What wp-cron.php does, once: every due event rescheduled or
        // unscheduled, then run. The Action Scheduler's queue runner is a
        // WP-Cron hook; if it was not due, it runs once after the events.
        if (!defined('PRESSLUFT_STAGING') || !PRESSLUFT_STAGING || !function_exists('pressluft_running_held_work')) {
            pl_fail('this environment holds no scheduled work (production, or no staging plugin)');
        }
        $before = pl_due_work();
        $ran = [];
        $jobs = wp_get_ready_cron_jobs();
        foreach ($jobs as $timestamp => $hooks) {
            foreach ($hooks as $hook => $instances) {
                foreach ($instances as $event) {
                    $args = is_array($event['args'] ?? null) ? $event['args'] : [];
                    if (!empty($event['schedule'])) {
                        wp_reschedule_event($timestamp, $event['schedule'], $hook, $args);
                    }
                    wp_unschedule_event($timestamp, $hook, $args);
                    do_action_ref_array($hook, $args);
                    $ran[] = (string) $hook;
                }
            }
        }
        $queue_ran = in_array('action_scheduler_run_queue', $ran, true);
        if (!$queue_ran && has_action('action_scheduler_run_queue')) {
            do_action('action_scheduler_run_queue', 'Pressluft');
            $queue_ran = true;
        }
        pl_answer(['ok' => true, 'cron_events' => count($ran), 'hooks' => array_slice(array_values(array_unique($ran)), 0, 50),
                   'action_scheduler' => $queue_ran, 'due_before' => $before, 'due_after' => pl_due_work()]);

    case 'cache-flush':
        $flushed = wp_cache_flush();
        pl_answer(['ok' => true, 'flushed' => (bool) $flushed]);

    case 'site-info':
        global $wp_version;
        pl_answer(['ok' => true, 'version' => $wp_version, 'home' => home_url('/'), 'siteurl' => site_url('/')]);

    case 'update-check':
        // What WordPress's own update check offers (core, plugins, themes),
        // asked of the update API the panel names, and the pages an update is
        // judged by. Fresh: the stored answers are dropped first.
        require_once ABSPATH . 'wp-admin/includes/admin.php';
        pl_update_api((string) ($request['api'] ?? ''));
        delete_site_transient('update_core');
        delete_site_transient('update_plugins');
        delete_site_transient('update_themes');
        wp_version_check([], true);
        wp_update_plugins();
        wp_update_themes();
        pl_answer(['ok' => true] + pl_components(true));

    case 'components':
        // The installed versions, read from the files (no update API asked).
        require_once ABSPATH . 'wp-admin/includes/admin.php';
        pl_answer(['ok' => true] + pl_components(false));

    case 'update-apply':
        // WordPress's upgrader classes install the packages the node
        // checked (local zip files) into the release this helper was loaded
        // from: a copy of the live release that is not live yet. Files are
        // replaced, never written into (pressluft-wp-filesystem.php).
        require_once ABSPATH . 'wp-admin/includes/admin.php';
        require_once ABSPATH . 'wp-admin/includes/class-wp-upgrader.php';
        require_once ABSPATH . 'wp-admin/includes/class-wp-filesystem-base.php';
        require_once ABSPATH . 'wp-admin/includes/class-wp-filesystem-direct.php';
        require_once __DIR__ . '/pressluft-wp-filesystem.php';
        pl_update_api((string) ($request['api'] ?? ''));
        pl_answer(['ok' => true, 'results' => pl_apply_updates($request)]);

    case 'db-upgrade':
        // The database upgrade of the WordPress now loaded (the new core,
        // after the switch), as wp-admin/upgrade.php would run it.
        require_once ABSPATH . 'wp-admin/includes/upgrade.php';
        global $wp_db_version;
        $before = (int) get_option('db_version');
        if ($before !== (int) $wp_db_version) {
            wp_upgrade();
        }
        wp_cache_flush();
        pl_answer(['ok' => true, 'before' => $before, 'after' => (int) get_option('db_version'),
                   'changed' => $before !== (int) $wp_db_version]);

    default:
        pl_fail('unknown command ' . $command);
}
