<?php
/**
 * Plugin Name: Pressluft staging safeguards
 * Description: On a staging or clone environment: holds outgoing mail, keeps search engines away and marks wp-admin.
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
