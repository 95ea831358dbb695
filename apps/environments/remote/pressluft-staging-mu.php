<?php
/**
 * Plugin Name: Pressluft staging safeguards
 * Description: On a staging or clone environment: holds outgoing mail, scheduled work (WP-Cron, Action Scheduler), payment gateways and outgoing HTTP requests, keeps search engines away and marks wp-admin.
 *
 * Installed by Pressluft as a must-use plugin in every release of every
 * environment, so a copied release carries it wherever it goes. It acts only
 * where wp-config.php defines PRESSLUFT_STAGING (every non-production
 * environment); in production it does nothing.
 */

if (!defined('ABSPATH')) {
    exit;
}

if (!defined('PRESSLUFT_STAGING') || !PRESSLUFT_STAGING) {
    return;
}

const PRESSLUFT_HELD_MAIL_OPTION = 'pressluft_held_mail';
const PRESSLUFT_HELD_MAIL_KEEP = 50;
const PRESSLUFT_STAGING_NOTICE = 'Staging environment — mail is held, search engines are discouraged';

// A copy holds production's customers and their addresses: no mail leaves it.
// Returning anything but null from pre_wp_mail short-circuits wp_mail(), which
// then returns that value; false tells the caller the mail was not sent. The
// last messages are kept so an operator can see what would have gone out.
add_filter('pre_wp_mail', function ($short_circuit, $atts) {
    $to = $atts['to'] ?? '';
    $held = get_option(PRESSLUFT_HELD_MAIL_OPTION, []);
    if (!is_array($held)) {
        $held = [];
    }
    $held[] = [
        'to' => is_array($to) ? implode(', ', array_map('strval', $to)) : (string) $to,
        'subject' => (string) ($atts['subject'] ?? ''),
        // The start of the body is enough to tell one mail from another.
        'message' => mb_substr(is_scalar($atts['message'] ?? '') ? (string) ($atts['message'] ?? '') : '', 0, 1000),
        'time' => gmdate('c'),
    ];
    // Not autoloaded: it is read only when someone asks for it.
    update_option(PRESSLUFT_HELD_MAIL_OPTION, array_slice($held, -PRESSLUFT_HELD_MAIL_KEEP), false);
    return false;
}, PHP_INT_MAX, 2);

// Whatever the copied database says, this copy is never public: the option is
// answered before the database is read, so robots.txt and wp_robots follow it.
add_filter('pre_option_blog_public', function () {
    return '0';
});

// The header covers what the robots meta tag cannot (feeds, files served
// through WordPress) and crawlers that ignore robots.txt.
add_action('send_headers', function () {
    if (!headers_sent()) {
        header('X-Robots-Tag: noindex, nofollow', true);
    }
});

// Operators must see at a glance that they are not editing the live site.
add_action('admin_bar_menu', function ($bar) {
    $bar->add_node([
        'id' => 'pressluft-staging',
        'parent' => 'top-secondary',
        'title' => 'STAGING',
        'meta' => ['title' => PRESSLUFT_STAGING_NOTICE],
    ]);
}, 1);

add_action('admin_notices', function () {
    printf('<div class="notice notice-warning"><p><strong>%s</strong></p></div>', esc_html(PRESSLUFT_STAGING_NOTICE));
});

// ---------------------------------------------------------------------------
// Scheduled work. A copy of a shop holds production's due work: subscription
// renewals that charge customers, orders sent to fulfilment, exports to live
// APIs. None of it runs here on its own. Pressluft's WordPress helper runs it
// once when the operator asks (it defines PRESSLUFT_RUN_HELD before loading
// WordPress); the payment and outgoing-request holds below stay on then too.
// Nothing is changed in the database: the events and actions stay queued.

function pressluft_running_held_work(): bool {
    return defined('PRESSLUFT_RUN_HELD') && PRESSLUFT_RUN_HELD;
}

if (!pressluft_running_held_work()) {
    // Page loads do not spawn WP-Cron (what DISABLE_WP_CRON does)...
    if (!defined('DISABLE_WP_CRON')) {
        define('DISABLE_WP_CRON', true);
    }
    // ...and a request to wp-cron.php (or any other caller) finds nothing due.
    add_filter('pre_get_ready_cron_jobs', function () {
        return [];
    }, PHP_INT_MAX);
    // WooCommerce's Action Scheduler: no batch may start (its runner asks how
    // many may run at once), no asynchronous runner request from wp-admin, and
    // nothing listens to its queue hook even if some code fires it.
    add_filter('action_scheduler_queue_runner_concurrent_batches', function () {
        return 0;
    }, PHP_INT_MAX);
    add_filter('action_scheduler_allow_async_request_runner', '__return_false', PHP_INT_MAX);
    add_action('init', function () {
        remove_all_actions('action_scheduler_run_queue');
    }, PHP_INT_MAX);
}

// ---------------------------------------------------------------------------
// Payment gateways: switched off, and to their test or sandbox mode where they
// have one, whatever the copied settings say. The settings are answered as
// they are read (the option_<name> filters), so the database keeps
// production's values and nothing here travels anywhere. The list is in
// docs/staging-holds.md.

const PRESSLUFT_GATEWAY_SETTINGS = [
    // WooCommerce's own gateways.
    'woocommerce_bacs_settings' => ['enabled' => 'no'],
    'woocommerce_cheque_settings' => ['enabled' => 'no'],
    'woocommerce_cod_settings' => ['enabled' => 'no'],
    'woocommerce_paypal_settings' => ['enabled' => 'no', 'testmode' => 'yes'],
    // WooCommerce Stripe Gateway (and its separate payment methods).
    'woocommerce_stripe_settings' => ['enabled' => 'no', 'testmode' => 'yes'],
    // WooCommerce PayPal Payments.
    'woocommerce-ppcp-settings' => ['enabled' => false, 'sandbox_on' => true],
    'woocommerce_ppcp-gateway_settings' => ['enabled' => 'no'],
    // WooCommerce PayPal Checkout (Express Checkout).
    'woocommerce_ppec_paypal_settings' => ['enabled' => 'no', 'environment' => 'sandbox'],
    // WooPayments.
    'woocommerce_woocommerce_payments_settings' => ['enabled' => 'no', 'test_mode' => 'yes'],
    // Square.
    'wc_square_settings' => ['enable_sandbox' => 'yes'],
    'woocommerce_square_credit_card_settings' => ['enabled' => 'no'],
    // Braintree.
    'woocommerce_braintree_credit_card_settings' => ['enabled' => 'no', 'environment' => 'sandbox'],
    'woocommerce_braintree_paypal_settings' => ['enabled' => 'no', 'environment' => 'sandbox'],
    // Amazon Pay.
    'woocommerce_amazon_payments_advanced_settings' => ['enabled' => 'no', 'sandbox' => 'yes'],
];

// Gateway ids taken out of the checkout whatever their settings say (a prefix ends in '*').
const PRESSLUFT_HELD_GATEWAYS = [
    'bacs', 'cheque', 'cod', 'paypal', 'stripe', 'stripe_*', 'ppcp-*', 'ppec_paypal', 'woocommerce_payments*',
    'square_*', 'braintree_*', 'amazon_payments_advanced*',
];

function pressluft_held_gateway(string $id): bool {
    foreach (PRESSLUFT_HELD_GATEWAYS as $pattern) {
        if (substr($pattern, -1) === '*' ? strpos($id, substr($pattern, 0, -1)) === 0 : $id === $pattern) {
            return true;
        }
    }
    return false;
}

foreach (PRESSLUFT_GATEWAY_SETTINGS as $pressluft_option => $pressluft_forced) {
    add_filter('option_' . $pressluft_option, function ($value) use ($pressluft_forced) {
        return is_array($value) ? array_merge($value, $pressluft_forced) : $value;
    }, PHP_INT_MAX);
}
unset($pressluft_option, $pressluft_forced);

// The Stripe plugin's other payment methods keep their settings in options of their own.
add_action('plugins_loaded', function () {
    global $wpdb;
    $names = $wpdb->get_col("SELECT option_name FROM {$wpdb->options} WHERE option_name LIKE 'woocommerce\\_stripe\\_%\\_settings'");
    foreach ((array) $names as $name) {
        add_filter('option_' . $name, function ($value) {
            return is_array($value) ? array_merge($value, ['enabled' => 'no']) : $value;
        }, PHP_INT_MAX);
    }
}, 0);

add_filter('woocommerce_available_payment_gateways', function ($gateways) {
    if (!is_array($gateways)) {
        return $gateways;
    }
    foreach (array_keys($gateways) as $id) {
        if (pressluft_held_gateway((string) $id)) {
            unset($gateways[$id]);
        }
    }
    return $gateways;
}, PHP_INT_MAX);

// WooPayments' own switch for a development copy.
if (!defined('WCPAY_DEV_MODE')) {
    define('WCPAY_DEV_MODE', true);
}

// ---------------------------------------------------------------------------
// Outgoing HTTP requests made through WordPress (wp_remote_*): the payment
// processors' API hosts are refused, every other host too unless the
// environment's allow-list names it (PRESSLUFT_OUTGOING_ALLOWED_HOSTS, set
// by the panel in wp-config.php); requests to the site itself pass. Every
// request is written to the environment's log (PRESSLUFT_OUTGOING_LOG), which
// the panel lists on the environment's page.

const PRESSLUFT_PAYMENT_HOSTS = [
    'stripe.com', 'paypal.com', 'braintreegateway.com', 'braintree-api.com', 'squareup.com',
    'pay-api.amazon.com', 'pay-api.amazon.eu', 'pay-api.amazon.jp', 'amazonpay.com',
    'mws.amazonservices.com', 'mws-eu.amazonservices.com', 'mws.amazonservices.jp',
    // WooPayments reaches its processor through WordPress.com's API.
    'public-api.wordpress.com',
];
const PRESSLUFT_OUTGOING_LOG_MAX_BYTES = 262144;

function pressluft_host_list(string $constant): array {
    if (!defined($constant)) {
        return [];
    }
    $hosts = array_map('trim', explode(',', strtolower((string) constant($constant))));
    return array_values(array_filter($hosts, function ($host) {
        return $host !== '';
    }));
}

function pressluft_host_matches(string $host, array $names): bool {
    foreach ($names as $name) {
        if ($host === $name || substr($host, -strlen($name) - 1) === '.' . $name) {
            return true;
        }
    }
    return false;
}

function pressluft_payment_hosts(): array {
    return array_merge(PRESSLUFT_PAYMENT_HOSTS, pressluft_host_list('PRESSLUFT_EXTRA_PAYMENT_HOSTS'));
}

/** [blocked, reason] for a request to $host. */
function pressluft_outgoing_decision(string $host): array {
    $own = strtolower((string) wp_parse_url(home_url('/'), PHP_URL_HOST));
    if ($host !== '' && $host === $own) {
        return [false, 'own site'];
    }
    if (pressluft_host_matches($host, pressluft_host_list('PRESSLUFT_OUTGOING_ALLOWED_HOSTS'))) {
        return [false, 'allow-list'];
    }
    if (pressluft_host_matches($host, pressluft_payment_hosts())) {
        return [true, 'payment processor'];
    }
    return [true, 'not on the allow-list'];
}

function pressluft_log_outgoing(array $entry): void {
    if (!defined('PRESSLUFT_OUTGOING_LOG') || PRESSLUFT_OUTGOING_LOG === '') {
        return;
    }
    $log = (string) PRESSLUFT_OUTGOING_LOG;
    clearstatcache(true, $log);
    // Bounded: past the limit the log starts again (the panel reads only its end anyway).
    if (@filesize($log) > PRESSLUFT_OUTGOING_LOG_MAX_BYTES) {
        @unlink($log);
    }
    @file_put_contents($log, wp_json_encode($entry) . "\n", FILE_APPEND | LOCK_EX);
}

add_filter('pre_http_request', function ($response, $args, $url) {
    if ($response !== false) {
        return $response;
    }
    $host = strtolower((string) wp_parse_url((string) $url, PHP_URL_HOST));
    $path = (string) wp_parse_url((string) $url, PHP_URL_PATH);
    [$blocked, $reason] = pressluft_outgoing_decision($host);
    pressluft_log_outgoing([
        'time' => gmdate('c'),
        'method' => strtoupper(substr((string) ($args['method'] ?? 'GET'), 0, 10)),
        'host' => substr($host, 0, 253),
        // The path only: a query string can carry keys and customers' data.
        'path' => substr($path === '' ? '/' : $path, 0, 200),
        'blocked' => $blocked,
        'reason' => $reason,
    ]);
    if ($blocked) {
        return new WP_Error('pressluft_outgoing_blocked',
            sprintf('Pressluft staging: the request to %s was not sent (%s).', $host, $reason));
    }
    return false;
}, PHP_INT_MAX, 3);

/** Which holds are on, for the panel (Pressluft's WordPress helper, command staging-holds). */
function pressluft_staging_holds(): array {
    $gateways = [];
    foreach (array_keys(PRESSLUFT_GATEWAY_SETTINGS) as $option) {
        $raw = get_option($option, null);
        if (is_array($raw)) {
            $gateways[] = ['option' => $option, 'enabled' => (string) ($raw['enabled'] ?? '')];
        }
    }
    return [
        'wp_cron' => defined('DISABLE_WP_CRON') && DISABLE_WP_CRON && has_filter('pre_get_ready_cron_jobs') !== false,
        'action_scheduler' => has_filter('action_scheduler_queue_runner_concurrent_batches') !== false,
        'payment_gateways' => has_filter('woocommerce_available_payment_gateways') !== false,
        'outgoing_requests' => has_filter('pre_http_request') !== false,
        'mail' => has_filter('pre_wp_mail') !== false,
        'search_engines' => has_filter('pre_option_blog_public') !== false,
        'gateway_settings' => $gateways,
        'payment_hosts' => pressluft_payment_hosts(),
        'allowed_hosts' => pressluft_host_list('PRESSLUFT_OUTGOING_ALLOWED_HOSTS'),
    ];
}
