/* tests/lazyfs/lazyfs.c: a FUSE file system that forgets what was never fsynced, for power-loss tests
 * (after LazyFS, which etcd's robustness suite uses).
 *
 *   lazyfs BACKING_DIR MOUNTPOINT [FUSE options, e.g. -f]
 *
 * Every name operation (create, mkdir, unlink, rename, link, ...) goes straight to BACKING_DIR. File
 * contents and sizes do not: a write lands in this process's memory (4 KiB pages per file) and reaches
 * BACKING_DIR only when that file is fsynced or fdatasynced, or written with O_DSYNC / RWF_DSYNC (then
 * the dirty pages are written, the size set and the backing file fsynced). Reads see the cached pages over the backing file, as a page cache
 * does. Killing this process is the power cut: every write not yet synced is gone, exactly what a disk
 * loses when the machine loses power; mounting BACKING_DIR again shows only what was synced.
 *
 * Simplifications, each on the side of keeping data (a test that passes here could still lose a file a
 * real power cut drops): name operations are durable at once (a real directory needs its own fsync);
 * link() and rename() sync the file's pending data first; fallocate() goes through. One lock serializes
 * everything: this is a test instrument, not a fast file system. */
#define FUSE_USE_VERSION 31
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <unistd.h>

enum { PAGE = 4096 };

struct page {
	uint64_t number;
	uint8_t bytes[PAGE];
	struct page *next;
};

/* The unsynced state of one file, by its path under the mount. */
struct lazy_file {
	char *path;
	int64_t size;         /* the size the file has for readers; -1: the backing file's */
	struct page **buckets; /* dirty pages, hashed by page number */
	size_t bucket_count;
	size_t page_count;
	struct lazy_file *next;
};

static char backing_root[PATH_MAX];
static struct lazy_file *files;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static void backing_path(const char *path, char *out)
{
	snprintf(out, PATH_MAX, "%s%s", backing_root, path);
}

static struct lazy_file *find_file(const char *path)
{
	for (struct lazy_file *file = files; file; file = file->next)
		if (strcmp(file->path, path) == 0)
			return file;
	return NULL;
}

static struct lazy_file *file_for(const char *path)
{
	struct lazy_file *file = find_file(path);
	if (file)
		return file;
	file = calloc(1, sizeof(*file));
	if (!file)
		abort();
	file->path = strdup(path);
	file->size = -1;
	file->bucket_count = 256;
	file->buckets = calloc(file->bucket_count, sizeof(struct page *));
	if (!file->path || !file->buckets)
		abort();
	file->next = files;
	files = file;
	return file;
}

static void forget_file(const char *path)
{
	for (struct lazy_file **at = &files; *at; at = &(*at)->next) {
		if (strcmp((*at)->path, path) != 0)
			continue;
		struct lazy_file *file = *at;
		*at = file->next;
		for (size_t b = 0; b < file->bucket_count; b++)
			for (struct page *page = file->buckets[b], *next; page; page = next) {
				next = page->next;
				free(page);
			}
		free(file->buckets);
		free(file->path);
		free(file);
		return;
	}
}

static struct page *find_page(struct lazy_file *file, uint64_t number)
{
	for (struct page *page = file->buckets[number % file->bucket_count]; page; page = page->next)
		if (page->number == number)
			return page;
	return NULL;
}

static int64_t backing_size(int fd)
{
	struct stat st;
	return fstat(fd, &st) == 0 ? st.st_size : 0;
}

static int64_t logical_size(struct lazy_file *file, int fd)
{
	return file && file->size >= 0 ? file->size : backing_size(fd);
}

/* A page to write into: cached, or loaded from the backing file (zeros past its end or the logical size). */
static struct page *page_for_write(struct lazy_file *file, int fd, uint64_t number)
{
	struct page *page = find_page(file, number);
	if (page)
		return page;
	page = calloc(1, sizeof(*page));
	if (!page)
		abort();
	page->number = number;
	int64_t size = logical_size(file, fd);
	int64_t start = (int64_t)number * PAGE;
	if (start < size) {
		size_t want = size - start < PAGE ? (size_t)(size - start) : PAGE;
		ssize_t got = pread(fd, page->bytes, want, start);
		(void)got; /* a short read leaves zeros, as a hole reads */
	}
	struct page **bucket = &file->buckets[number % file->bucket_count];
	page->next = *bucket;
	*bucket = page;
	file->page_count++;
	return page;
}

static void drop_pages_from(struct lazy_file *file, int64_t size)
{
	for (size_t b = 0; b < file->bucket_count; b++) {
		for (struct page **at = &file->buckets[b]; *at;) {
			struct page *page = *at;
			int64_t start = (int64_t)page->number * PAGE;
			if (start >= size) {
				*at = page->next;
				free(page);
				file->page_count--;
				continue;
			}
			if (start + PAGE > size)
				memset(page->bytes + (size - start), 0, (size_t)(start + PAGE - size));
			at = &page->next;
		}
	}
}

/* Makes the file's cached state the backing file's, durably. */
static int sync_file(const char *path, int fd)
{
	struct lazy_file *file = find_file(path);
	if (!file)
		return fdatasync(fd) == 0 ? 0 : -errno;
	int64_t size = logical_size(file, fd);
	for (size_t b = 0; b < file->bucket_count; b++) {
		for (struct page *page = file->buckets[b]; page; page = page->next) {
			int64_t start = (int64_t)page->number * PAGE;
			if (start >= size)
				continue;
			size_t length = size - start < PAGE ? (size_t)(size - start) : PAGE;
			if (pwrite(fd, page->bytes, length, start) != (ssize_t)length)
				return errno ? -errno : -EIO;
		}
	}
	if (ftruncate(fd, size) != 0)
		return -errno;
	if (fsync(fd) != 0)
		return -errno;
	forget_file(path);
	return 0;
}

/* For operations that act on a path without an open file (link, rename): sync through a fresh fd. */
static int sync_path(const char *path)
{
	if (!find_file(path))
		return 0;
	char real[PATH_MAX];
	backing_path(path, real);
	int fd = open(real, O_RDWR);
	if (fd < 0)
		return -errno;
	int rc = sync_file(path, fd);
	close(fd);
	return rc;
}

static void *lazy_init(struct fuse_conn_info *connection, struct fuse_config *config)
{
	(void)connection;
	config->use_ino = 1;
	/* Sizes and pages change under the kernel's feet (they live here): never cache them there. */
	config->attr_timeout = 0;
	config->entry_timeout = 0;
	config->negative_timeout = 0;
	/* The kernel may keep pages it read or saw written (writes still come here one by one: no writeback
	 * cache), so mmap works (WAL recovery reads segments so); the mount's cache dies with the mount. */
	config->direct_io = 0;
	config->kernel_cache = 0;
	return NULL;
}

static int lazy_getattr(const char *path, struct stat *st, struct fuse_file_info *info)
{
	(void)info;
	char real[PATH_MAX];
	backing_path(path, real);
	pthread_mutex_lock(&lock);
	int rc = lstat(real, st) == 0 ? 0 : -errno;
	struct lazy_file *file = find_file(path);
	if (rc == 0 && file && file->size >= 0) {
		st->st_size = file->size;
		st->st_blocks = (file->size + 511) / 512;
	}
	pthread_mutex_unlock(&lock);
	return rc;
}

static int lazy_readdir(const char *path, void *buffer, fuse_fill_dir_t fill, off_t offset, struct fuse_file_info *info,
                        enum fuse_readdir_flags flags)
{
	(void)offset;
	(void)info;
	(void)flags;
	char real[PATH_MAX];
	backing_path(path, real);
	DIR *dir = opendir(real);
	if (!dir)
		return -errno;
	struct dirent *entry;
	while ((entry = readdir(dir)) != NULL) {
		struct stat st = {.st_ino = entry->d_ino, .st_mode = (mode_t)entry->d_type << 12};
		if (fill(buffer, entry->d_name, &st, 0, 0))
			break;
	}
	closedir(dir);
	return 0;
}

static int lazy_open(const char *path, struct fuse_file_info *info)
{
	char real[PATH_MAX];
	backing_path(path, real);
	/* O_TRUNC is a size change like any other: lazy. O_APPEND is resolved here against the logical size. */
	/* Read-write whatever the caller asked: pages are filled from the backing file, and an fsync through
	 * any descriptor (a read-only one included, as the WAL does) must write the file's pending pages. */
	int flags = info->flags & ~(O_TRUNC | O_APPEND | O_DIRECT | O_ACCMODE);
	int fd = open(real, flags | O_RDWR);
	if (fd < 0 && (errno == EACCES || errno == EISDIR || errno == EROFS || errno == ETXTBSY))
		fd = open(real, (info->flags & ~(O_TRUNC | O_APPEND | O_DIRECT)));
	if (fd < 0)
		return -errno;
	info->fh = (uint64_t)fd;
	if (info->flags & O_TRUNC) {
		pthread_mutex_lock(&lock);
		struct lazy_file *file = file_for(path);
		file->size = 0;
		drop_pages_from(file, 0);
		pthread_mutex_unlock(&lock);
	}
	return 0;
}

static int lazy_create(const char *path, mode_t mode, struct fuse_file_info *info)
{
	char real[PATH_MAX];
	backing_path(path, real);
	int flags = (info->flags & ~(O_TRUNC | O_APPEND | O_DIRECT | O_ACCMODE)) | O_RDWR | O_CREAT;
	int fd = open(real, flags, mode);
	if (fd < 0)
		return -errno;
	info->fh = (uint64_t)fd;
	pthread_mutex_lock(&lock);
	struct lazy_file *file = file_for(path);
	file->size = 0; /* a new file's contents are all unsynced */
	drop_pages_from(file, 0);
	pthread_mutex_unlock(&lock);
	return 0;
}

static int lazy_read(const char *path, char *buffer, size_t size, off_t offset, struct fuse_file_info *info)
{
	int fd = (int)info->fh;
	pthread_mutex_lock(&lock);
	struct lazy_file *file = find_file(path);
	int64_t length = logical_size(file, fd);
	if (offset >= length) {
		pthread_mutex_unlock(&lock);
		return 0;
	}
	if ((int64_t)size > length - offset)
		size = (size_t)(length - offset);
	ssize_t got = pread(fd, buffer, size, offset);
	if (got < 0) {
		pthread_mutex_unlock(&lock);
		return -errno;
	}
	if ((size_t)got < size)
		memset(buffer + got, 0, size - (size_t)got); /* the backing file is shorter: the rest is cached or a hole */
	if (file) {
		for (uint64_t number = (uint64_t)offset / PAGE; (int64_t)number * PAGE < offset + (int64_t)size; number++) {
			struct page *page = find_page(file, number);
			if (!page)
				continue;
			int64_t start = (int64_t)number * PAGE;
			int64_t from = start > offset ? start : offset;
			int64_t to = start + PAGE < offset + (int64_t)size ? start + PAGE : offset + (int64_t)size;
			memcpy(buffer + (from - offset), page->bytes + (from - start), (size_t)(to - from));
		}
	}
	pthread_mutex_unlock(&lock);
	return (int)size;
}

static int lazy_write(const char *path, const char *buffer, size_t size, off_t offset, struct fuse_file_info *info)
{
	int fd = (int)info->fh;
	pthread_mutex_lock(&lock);
	struct lazy_file *file = file_for(path);
	if (file->size < 0)
		file->size = backing_size(fd);
	if (info->flags & O_APPEND)
		offset = file->size;
	size_t done = 0;
	while (done < size) {
		uint64_t number = (uint64_t)(offset + (off_t)done) / PAGE;
		size_t within = (size_t)((offset + (off_t)done) % PAGE);
		size_t chunk = PAGE - within < size - done ? PAGE - within : size - done;
		memcpy(page_for_write(file, fd, number)->bytes + within, buffer + done, chunk);
		done += chunk;
	}
	if (offset + (int64_t)size > file->size)
		file->size = offset + (int64_t)size;
	/* A write through an O_DSYNC / O_SYNC descriptor, or one carrying RWF_DSYNC (the kernel passes it in the
	 * write's flags), returns only once durable, as on a real disk: the file is synced before answering. */
	int rc = (info->flags & O_DSYNC) ? sync_file(path, fd) : 0;
	pthread_mutex_unlock(&lock);
	return rc != 0 ? rc : (int)size;
}

static int lazy_truncate(const char *path, off_t size, struct fuse_file_info *info)
{
	pthread_mutex_lock(&lock);
	struct lazy_file *file = file_for(path);
	if (file->size < 0) {
		char real[PATH_MAX];
		backing_path(path, real);
		struct stat st;
		file->size = info ? backing_size((int)info->fh) : (stat(real, &st) == 0 ? st.st_size : 0);
	}
	drop_pages_from(file, size);
	file->size = size;
	pthread_mutex_unlock(&lock);
	return 0;
}

static int lazy_fsync(const char *path, int datasync, struct fuse_file_info *info)
{
	(void)datasync;
	pthread_mutex_lock(&lock);
	int rc = sync_file(path, (int)info->fh);
	pthread_mutex_unlock(&lock);
	return rc;
}

static int lazy_flush(const char *path, struct fuse_file_info *info)
{
	(void)path;
	(void)info;
	return 0; /* close() is not a sync */
}

static int lazy_release(const char *path, struct fuse_file_info *info)
{
	(void)path;
	close((int)info->fh);
	return 0;
}

static int lazy_fallocate(const char *path, int mode, off_t offset, off_t length, struct fuse_file_info *info)
{
	pthread_mutex_lock(&lock);
	/* Through to the backing file; a size it extends is the size for readers too. */
	int rc = fallocate((int)info->fh, mode, offset, length) == 0 ? 0 : -errno;
	struct lazy_file *file = find_file(path);
	if (rc == 0 && file && file->size >= 0 && !(mode & FALLOC_FL_KEEP_SIZE) && offset + length > file->size)
		file->size = offset + length;
	pthread_mutex_unlock(&lock);
	return rc;
}

static int lazy_unlink(const char *path)
{
	char real[PATH_MAX];
	backing_path(path, real);
	pthread_mutex_lock(&lock);
	int rc = unlink(real) == 0 ? 0 : -errno;
	if (rc == 0)
		forget_file(path);
	pthread_mutex_unlock(&lock);
	return rc;
}

static int lazy_rename(const char *from, const char *to, unsigned int flags)
{
	char real_from[PATH_MAX], real_to[PATH_MAX];
	backing_path(from, real_from);
	backing_path(to, real_to);
	pthread_mutex_lock(&lock);
	int rc = sync_path(from);
	if (rc == 0)
		rc = renameat2(AT_FDCWD, real_from, AT_FDCWD, real_to, flags) == 0 ? 0 : -errno;
	if (rc == 0)
		forget_file(to);
	pthread_mutex_unlock(&lock);
	return rc;
}

static int lazy_link(const char *from, const char *to)
{
	char real_from[PATH_MAX], real_to[PATH_MAX];
	backing_path(from, real_from);
	backing_path(to, real_to);
	pthread_mutex_lock(&lock);
	int rc = sync_path(from);
	if (rc == 0)
		rc = link(real_from, real_to) == 0 ? 0 : -errno;
	pthread_mutex_unlock(&lock);
	return rc;
}

static int lazy_mkdir(const char *path, mode_t mode)
{
	char real[PATH_MAX];
	backing_path(path, real);
	return mkdir(real, mode) == 0 ? 0 : -errno;
}

static int lazy_rmdir(const char *path)
{
	char real[PATH_MAX];
	backing_path(path, real);
	return rmdir(real) == 0 ? 0 : -errno;
}

static int lazy_symlink(const char *target, const char *path)
{
	char real[PATH_MAX];
	backing_path(path, real);
	return symlink(target, real) == 0 ? 0 : -errno;
}

static int lazy_readlink(const char *path, char *buffer, size_t size)
{
	char real[PATH_MAX];
	backing_path(path, real);
	ssize_t length = readlink(real, buffer, size - 1);
	if (length < 0)
		return -errno;
	buffer[length] = '\0';
	return 0;
}

static int lazy_chmod(const char *path, mode_t mode, struct fuse_file_info *info)
{
	(void)info;
	char real[PATH_MAX];
	backing_path(path, real);
	return chmod(real, mode) == 0 ? 0 : -errno;
}

static int lazy_utimens(const char *path, const struct timespec times[2], struct fuse_file_info *info)
{
	(void)info;
	char real[PATH_MAX];
	backing_path(path, real);
	return utimensat(AT_FDCWD, real, times, AT_SYMLINK_NOFOLLOW) == 0 ? 0 : -errno;
}

static int lazy_statfs(const char *path, struct statvfs *st)
{
	char real[PATH_MAX];
	backing_path(path, real);
	return statvfs(real, st) == 0 ? 0 : -errno;
}

static int lazy_access(const char *path, int mask)
{
	char real[PATH_MAX];
	backing_path(path, real);
	return access(real, mask) == 0 ? 0 : -errno;
}

static int lazy_fsyncdir(const char *path, int datasync, struct fuse_file_info *info)
{
	(void)path;
	(void)datasync;
	(void)info;
	return 0; /* name operations are durable at once here */
}

static const struct fuse_operations operations = {
    .init = lazy_init,
    .getattr = lazy_getattr,
    .readdir = lazy_readdir,
    .open = lazy_open,
    .create = lazy_create,
    .read = lazy_read,
    .write = lazy_write,
    .truncate = lazy_truncate,
    .fsync = lazy_fsync,
    .flush = lazy_flush,
    .release = lazy_release,
    .fallocate = lazy_fallocate,
    .unlink = lazy_unlink,
    .rename = lazy_rename,
    .link = lazy_link,
    .symlink = lazy_symlink,
    .readlink = lazy_readlink,
    .mkdir = lazy_mkdir,
    .rmdir = lazy_rmdir,
    .chmod = lazy_chmod,
    .utimens = lazy_utimens,
    .statfs = lazy_statfs,
    .access = lazy_access,
    .fsyncdir = lazy_fsyncdir,
};

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: lazyfs BACKING_DIR MOUNTPOINT [FUSE options]\n");
		return 2;
	}
	if (!realpath(argv[1], backing_root)) {
		fprintf(stderr, "lazyfs: backing directory %s: %s\n", argv[1], strerror(errno));
		return 2;
	}
	/* FUSE takes the mount point and its options; the backing directory is ours. */
	argv[1] = argv[0];
	return fuse_main(argc - 1, argv + 1, &operations, NULL);
}
