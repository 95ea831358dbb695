<?php
/*
 * Pressluft: run by the node (php_opcache.py) through one environment's own
 * PHP-FPM pool after a release switch, never by Nginx (it lies outside every
 * document root). Invalidates every file PHP's opcache holds under the
 * environment's root except the live release's: the files with one real
 * path across releases (shared/: wp-config.php, the object cache drop-in)
 * are read anew, and the releases left behind count as wasted memory, which
 * opcache reclaims by itself. Answers one JSON object.
 */
header( 'Content-Type: application/json' );
$root         = rtrim( (string) ( $_SERVER['PRESSLUFT_ROOT'] ?? '' ), '/' );
$live_release = (string) ( $_SERVER['PRESSLUFT_LIVE_RELEASE'] ?? '' );
if ( '' === $root || '/' !== $root[0] || false !== strpos( $root, '/..' ) ) {
	echo json_encode( array( 'error' => 'no environment root' ) );
	return;
}
if ( ! function_exists( 'opcache_get_status' ) ) {
	echo json_encode( array( 'enabled' => false ) );
	return;
}
$status = opcache_get_status( true );
if ( ! is_array( $status ) || empty( $status['opcache_enabled'] ) ) {
	echo json_encode( array( 'enabled' => false ) );
	return;
}
$prefix      = $root . '/';
$live        = '' === $live_release ? null : $prefix . 'releases/' . $live_release . '/';
$invalidated = 0;
$gone        = 0;
foreach ( array_keys( $status['scripts'] ?? array() ) as $path ) {
	if ( 0 !== strncmp( $path, $prefix, strlen( $prefix ) ) ) {
		continue;
	}
	if ( null !== $live && 0 === strncmp( $path, $live, strlen( $live ) ) ) {
		continue;
	}
	if ( opcache_invalidate( $path, true ) ) {
		++$invalidated;
	} else {
		++$gone;
	}
}
echo json_encode(
	array(
		'enabled'     => true,
		'invalidated' => $invalidated,
		'gone'        => $gone,
		'memory_free' => $status['memory_usage']['free_memory'] ?? null,
	)
);
