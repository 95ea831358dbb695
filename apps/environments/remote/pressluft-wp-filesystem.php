<?php
/**
 * The filesystem WordPress's upgraders use when Pressluft updates a release
 * (loaded by pressluft-wp.php for "update-apply" only).
 *
 * The release being updated is a copy of the live one whose files are
 * hardlinks to the live release's files: root's, read-only, shared. Only its
 * directories are lent to the environment's user for the update. So a file is
 * never written into, it is replaced: the old name is unlinked and a new file
 * (a new inode) takes its place; the live release's file stays as it was. A
 * write into a shared file would fail anyway (it is root's), which is the
 * point: nothing here can change the live site.
 */

class WP_Filesystem_Pressluft extends WP_Filesystem_Direct {

    public function __construct($arg) {
        parent::__construct($arg);
        // Not "direct": update_core() would test each file for in-place writability.
        $this->method = 'pressluft';
    }

    private function unlink_file(string $path): void {
        if (is_link($path) || is_file($path)) {
            @unlink($path);
        }
    }

    public function put_contents($file, $contents, $mode = false) {
        $this->unlink_file($file);
        return parent::put_contents($file, $contents, $mode);
    }

    public function copy($source, $destination, $overwrite = false, $mode = false) {
        if (!$overwrite && $this->exists($destination)) {
            return false;
        }
        $this->unlink_file($destination);
        return parent::copy($source, $destination, $overwrite, $mode);
    }

    /** A file counts as writable when it can be replaced (its directory is writable). */
    public function is_writable($path) {
        if (@is_writable($path)) {
            return true;
        }
        return (is_file($path) || is_link($path)) && @is_writable(dirname($path));
    }

    public function touch($file, $time = 0, $atime = 0) {
        if ($this->exists($file)) {
            return true;  // never the shared inode's times
        }
        return parent::touch($file, $time, $atime);
    }
}
