<?php
/**
 * Plugin Name: Pressluft one-time login
 * Description: Lets the Pressluft panel open wp-admin with a one-time link (valid 60 seconds, usable once).
 *
 * Installed by Pressluft as a must-use plugin. The panel creates the token
 * with its helper; only the token's SHA-256 is stored.
 */

if (!defined('ABSPATH')) {
    exit;
}

add_action('init', function () {
    if (!isset($_GET['pressluft_login'])) {
        return;
    }
    $token = (string) wp_unslash($_GET['pressluft_login']);
    nocache_headers();
    if (!preg_match('/^[a-f0-9]{48}$/', $token)) {
        wp_die('This login link is not valid.', 'Login link', ['response' => 403]);
    }
    global $wpdb;
    $option = 'pressluft_login_' . hash('sha256', $token);
    $stored = $wpdb->get_var($wpdb->prepare("SELECT option_value FROM {$wpdb->options} WHERE option_name = %s", $option));
    // Deleting the row is the claim: of two requests racing, one deletes it.
    $claimed = $stored !== null
        && $wpdb->query($wpdb->prepare("DELETE FROM {$wpdb->options} WHERE option_name = %s", $option)) === 1;
    wp_cache_delete($option, 'options');
    $grant = $claimed ? json_decode($stored, true) : null;
    if (!is_array($grant) || (int) ($grant['expires'] ?? 0) < time()) {
        wp_die('This login link has expired or was used already.', 'Login link', ['response' => 403]);
    }
    $user = get_user_by('id', (int) $grant['user']);
    if (!$user) {
        wp_die('This login link is not valid.', 'Login link', ['response' => 403]);
    }
    wp_set_current_user($user->ID);
    wp_set_auth_cookie($user->ID, false, is_ssl());
    wp_safe_redirect(admin_url());
    exit;
}, 1);
