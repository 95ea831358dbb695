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

    default:
        pl_fail('unknown command ' . $command);
}
