/* tests/state/test_resume.c: a state whose file system filled goes on once space is freed (state_resume),
 * without being reopened by its owner. The state runs on a 64 MiB tmpfs mounted by this test in a private
 * mount namespace (gone with the process, also after a failed check; without root the test is skipped,
 * exit 77). Ballast leaves less free than the state keeps for RocksDB's own writes: a batch is refused with
 * STATE_ERR_NOSPACE and nothing of it is written, state_resume says the same while the disk stays full, and
 * once the ballast is gone it returns STATE_OK, the same batch commits, and a reopen finds everything. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/statvfs.h>

#include "state_test.h"

static char mount_point[64];
static int mounted;

static void unmount_at_exit(void)
{
    if (mounted)
        umount2(mount_point, MNT_DETACH);
    mounted = 0;
}

static uint64_t free_bytes(const char *path)
{
    struct statvfs info;
    return statvfs(path, &info) == 0 ? (uint64_t)info.f_bavail * info.f_frsize : 0;
}

/* Fills the file system at dir until `leave` bytes are free. */
static int fill(const char *path, uint64_t leave)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    uint64_t free_now = free_bytes(mount_point);
    int rc = free_now > leave ? posix_fallocate(fd, 0, (off_t)(free_now - leave)) : 0;
    close(fd);
    return rc == 0 ? 0 : -1;
}

static void test_resume_after_nospace(void)
{
    char root[128];
    snprintf(root, sizeof root, "%s/state", mount_point);
    struct state *state = NULL;
    REQUIRE_OK(state_open(root, &state, test_err, sizeof test_err));
    CHECK_EQ(put_batch(state, 1, "before", "1"), STATE_OK);
    /* Nothing failed: resuming changes nothing. */
    CHECK_EQ(state_resume(state, test_err, sizeof test_err), STATE_OK);
    CHECK_EQ(state_applied_index(state), 1);

    char ballast[128];
    snprintf(ballast, sizeof ballast, "%s/ballast", mount_point);
    CHECK(fill(ballast, 2u << 20) == 0);
    REQUIRE_OK(state_batch_begin(state, test_err, sizeof test_err));
    CHECK_EQ(put(state, "during", "2"), STATE_OK);
    CHECK_EQ(state_batch_commit(state, 2, test_err, sizeof test_err), STATE_ERR_NOSPACE);
    CHECK(strstr(test_err, "kept for RocksDB") != NULL);
    CHECK_EQ(state_applied_index(state), 1);
    CHECK_EQ(state_revision(state), 2);
    /* Still full: refused, nothing changed. */
    CHECK_EQ(state_resume(state, test_err, sizeof test_err), STATE_ERR_NOSPACE);
    struct state_kv kv;
    CHECK(get_at(state, "before", 0, &kv));
    free_kv(&kv);

    CHECK(unlink(ballast) == 0);
    CHECK_EQ(state_resume(state, test_err, sizeof test_err), STATE_OK);
    /* The batch that was refused, applied again, then more. */
    CHECK_EQ(put_batch(state, 2, "during", "2"), STATE_OK);
    CHECK_EQ(put_batch(state, 3, "after", "3"), STATE_OK);
    CHECK_EQ(state_applied_index(state), 3);
    CHECK_EQ(state_revision(state), 4);
    state_close(state);

    REQUIRE_OK(state_open(root, &state, test_err, sizeof test_err));
    CHECK_EQ(state_applied_index(state), 3);
    CHECK_EQ(state_revision(state), 4);
    CHECK(get_at(state, "during", 0, &kv));
    CHECK(value_is(&kv, "2"));
    CHECK_EQ(kv.mod_revision, 3);
    free_kv(&kv);
    CHECK(get_at(state, "after", 0, &kv));
    free_kv(&kv);
    state_close(state);
}

int main(int argc, char **argv)
{
    (void)argc;
    test_program = argv[0];
    if (unshare(CLONE_NEWNS) != 0 || mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) {
        printf("skipped: cannot create a private mount namespace (%s); needs root\n", strerror(errno));
        return 77;
    }
    snprintf(mount_point, sizeof mount_point, "%s", temp_dir());
    if (mount("tmpfs", mount_point, "tmpfs", 0, "size=64m") != 0) {
        printf("skipped: cannot mount tmpfs (%s)\n", strerror(errno));
        return 77;
    }
    mounted = 1;
    atexit(unmount_at_exit);
    RUN(test_resume_after_nospace);
    unmount_at_exit();
    return test_failures == 0 ? 0 : 1;
}
