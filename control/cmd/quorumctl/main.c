/* control/cmd/quorumctl/main.c: quorumctl, the operator's client of quorumd's control socket. It speaks
 * etcdctl's words and prints etcdctl 3.4's output (simple, table, json), so an operator who knows etcdctl
 * reads it unchanged. Beyond etcdctl: the ready-to-run quorumd command after `member add`, and
 * `member replace` (add a learner, wait until it is in sync, promote it, remove the old member). */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "control_socket.h"
#include "quorumctl.h"

static const char usage_text[] =
    "NAME:\n"
    "\tquorumctl - A simple command line client for quorumd (an etcd-compatible Raft node).\n"
    "\n"
    "USAGE:\n"
    "\tquorumctl [flags] COMMAND [arguments]\n"
    "\n"
    "COMMANDS:\n"
    "\tdel KEY [RANGE_END] [--prefix]\t\t\tRemoves the specified key or range of keys [key, range_end)\n"
    "\tendpoint status\t\t\t\t\tPrints out the status of the node behind the control socket\n"
    "\tget KEY [RANGE_END] [--consistency=l|s] [--prefix] [--print-value-only]\n"
    "\t\t\t\t\t\t\tGets the key or a range of keys\n"
    "\tmember add NAME --peer-urls=URLS [--learner]\tAdds a member into the cluster\n"
    "\tmember list\t\t\t\t\tLists all members in the cluster\n"
    "\tmember promote ID\t\t\t\tPromotes a non-voting member in the cluster\n"
    "\tmember remove ID [--force]\t\t\tRemoves a member from the cluster (--force: also from two members)\n"
    "\tmember replace OLD_ID NAME --peer-urls=URLS [--catch-up-timeout=10m]\n"
    "\t\t\t\t\t\t\tAdds NAME as a learner, waits until it is in sync, promotes it, removes OLD_ID\n"
    "\tmember update ID --peer-urls=URLS\t\tUpdates a member in the cluster\n"
    "\tmove-leader ID\t\t\t\t\tTransfers leadership to another member\n"
    "\tcounters\t\t\t\t\tPrints quorumd's counters (JSON)\n"
    "\tput KEY [VALUE]\t\t\t\t\tPuts the given key into the store (VALUE from stdin when omitted)\n"
    "\n"
    "FLAGS:\n"
    "\t--control-socket=PATH\t\tquorumd's control socket (env QUORUMCTL_CONTROL_SOCKET; default "
    "default.etcd/control.sock)\n"
    "\t--command-timeout=5s\t\ttimeout for short running command (excluding dial timeout)\n"
    "\t-w, --write-out=simple\t\tset the output format (simple, table, json)\n"
    "\t--endpoints\t\t\tnot supported until quorumd's client API exists\n"
    "\t-h, --help\t\t\thelp for quorumctl\n";

/* ---- flags, parsed as spf13/pflag does (--flag=value, --flag value, -w value, bare booleans) ---------- */

enum flag_id {
	F_CONTROL_SOCKET,
	F_WRITE_OUT,
	F_COMMAND_TIMEOUT,
	F_ENDPOINTS,
	F_PEER_URLS,
	F_LEARNER,
	F_CONSISTENCY,
	F_PRINT_VALUE_ONLY,
	F_PREFIX,
	F_CATCH_UP_TIMEOUT,
	F_FORCE,
	F_HELP,
	F_COUNT
};

static const struct {
	const char *name;
	char shorthand;
	bool boolean;
} flag_specs[F_COUNT] = {
    [F_CONTROL_SOCKET] = {"control-socket", 0, false},  [F_WRITE_OUT] = {"write-out", 'w', false},
    [F_COMMAND_TIMEOUT] = {"command-timeout", 0, false}, [F_ENDPOINTS] = {"endpoints", 0, false},
    [F_PEER_URLS] = {"peer-urls", 0, false},            [F_LEARNER] = {"learner", 0, true},
    [F_CONSISTENCY] = {"consistency", 0, false},        [F_PRINT_VALUE_ONLY] = {"print-value-only", 0, true},
    [F_PREFIX] = {"prefix", 0, true},                   [F_CATCH_UP_TIMEOUT] = {"catch-up-timeout", 0, false},
    [F_FORCE] = {"force", 0, true},                     [F_HELP] = {"help", 'h', true},
};

static const char *flag_value[F_COUNT];
static bool flag_set[F_COUNT];
static const char *positional[64];
static size_t positional_count;

static bool flag_true(enum flag_id id)
{
	return flag_set[id] && strcmp(flag_value[id], "true") == 0;
}

static void set_flag(enum flag_id id, const char *value, const char *as_written)
{
	if (flag_specs[id].boolean) {
		if (strcmp(value, "true") == 0 || strcmp(value, "1") == 0 || strcmp(value, "t") == 0 ||
		    strcmp(value, "T") == 0 || strcmp(value, "TRUE") == 0 || strcmp(value, "True") == 0)
			value = "true";
		else if (strcmp(value, "false") == 0 || strcmp(value, "0") == 0 || strcmp(value, "f") == 0 ||
		         strcmp(value, "F") == 0 || strcmp(value, "FALSE") == 0 || strcmp(value, "False") == 0)
			value = "false";
		else
			quorumctl_fail(EXIT_ERROR, "invalid argument \"%s\" for \"%s\" flag: strconv.ParseBool: parsing "
			               "\"%s\": invalid syntax", value, as_written, value);
	}
	flag_value[id] = value;
	flag_set[id] = true;
}

static void parse_arguments(int argc, char **argv)
{
	for (int k = 1; k < argc; k++) {
		const char *arg = argv[k];
		if (strcmp(arg, "--") == 0) {
			while (++k < argc && positional_count < 64)
				positional[positional_count++] = argv[k];
			break;
		}
		if (arg[0] != '-' || arg[1] == '\0') {
			if (positional_count == 64)
				quorumctl_fail(EXIT_BAD_ARGS, "too many arguments");
			positional[positional_count++] = arg;
			continue;
		}
		if (arg[1] == '-') {
			const char *name = arg + 2;
			const char *equals = strchr(name, '=');
			size_t length = equals ? (size_t)(equals - name) : strlen(name);
			int id = -1;
			for (int f = 0; f < F_COUNT; f++)
				if (strlen(flag_specs[f].name) == length && strncmp(flag_specs[f].name, name, length) == 0)
					id = f;
			if (id < 0)
				quorumctl_fail(EXIT_ERROR, "unknown flag: --%.*s", (int)length, name);
			char written[64];
			snprintf(written, sizeof(written), "--%s", flag_specs[id].name);
			if (equals)
				set_flag((enum flag_id)id, equals + 1, written);
			else if (flag_specs[id].boolean)
				set_flag((enum flag_id)id, "true", written);
			else if (k + 1 < argc)
				set_flag((enum flag_id)id, argv[++k], written);
			else
				quorumctl_fail(EXIT_ERROR, "flag needs an argument: --%s", flag_specs[id].name);
			continue;
		}
		/* Shorthand: -w json, -wjson, -w=json, -h. */
		int id = -1;
		for (int f = 0; f < F_COUNT; f++)
			if (flag_specs[f].shorthand == arg[1])
				id = f;
		if (id < 0)
			quorumctl_fail(EXIT_ERROR, "unknown shorthand flag: '%c' in %s", arg[1], arg);
		char written[64];
		snprintf(written, sizeof(written), "-%c, --%s", arg[1], flag_specs[id].name);
		if (flag_specs[id].boolean)
			set_flag((enum flag_id)id, arg[2] == '=' ? arg + 3 : "true", written);
		else if (arg[2] != '\0')
			set_flag((enum flag_id)id, arg[2] == '=' ? arg + 3 : arg + 2, written);
		else if (k + 1 < argc)
			set_flag((enum flag_id)id, argv[++k], written);
		else
			quorumctl_fail(EXIT_ERROR, "flag needs an argument: '%c' in -%c", arg[1], arg[1]);
	}
}

/* Go's time.ParseDuration for the forms an operator writes: "5s", "1.5s", "500ms", "1m30s", "2h". */
static long long parse_duration_ms(const char *text, const char *flag)
{
	const char *p = text;
	double total_ms = 0;
	if (strcmp(p, "0") == 0)
		return 0;
	if (*p == '\0')
		goto bad;
	while (*p) {
		char *end;
		if (!isdigit((unsigned char)*p) && *p != '.')
			goto bad;
		double value = strtod(p, &end);
		if (end == p)
			goto bad;
		p = end;
		static const struct {
			const char *unit;
			double ms;
		} units[] = {{"ns", 1e-6}, {"us", 1e-3}, {"µs", 1e-3}, {"ms", 1}, {"s", 1000}, {"m", 60000},
		             {"h", 3600000}};
		int found = -1;
		size_t found_length = 0;
		for (int u = 0; u < 7; u++) {
			size_t length = strlen(units[u].unit);
			if (strncmp(p, units[u].unit, length) == 0 && length > found_length) {
				found = u;
				found_length = length;
			}
		}
		if (found < 0)
			goto bad;
		total_ms += value * units[found].ms;
		p += found_length;
	}
	return (long long)total_ms;
bad:
	quorumctl_fail(EXIT_ERROR, "invalid argument \"%s\" for \"%s\" flag: time: invalid duration \"%s\"", text, flag,
	               text);
}

/* ---- shared helpers ---------------------------------------------------------------------------------- */

enum output_format { OUT_SIMPLE, OUT_TABLE, OUT_JSON };
static enum output_format output = OUT_SIMPLE;
static const char *socket_path;
static long long timeout_ms = 5000;

static void unsupported_output(void)
{
	quorumctl_fail(EXIT_BAD_FEATURE, "%s not supported as output format",
	               output == OUT_TABLE ? "table" : "json");
}

/* strconv.ParseUint(s, 16, 64) and its error text, as etcdctl reports a bad ID. */
static uint64_t parse_id_argument(const char *text, const char *form)
{
	uint64_t id;
	if (control_parse_hex_id(text, &id) == 0)
		return id;
	bool digits = *text != '\0';
	for (const char *p = text; *p; p++)
		if (!isxdigit((unsigned char)*p))
			digits = false;
	char reason[300];
	snprintf(reason, sizeof(reason), "strconv.ParseUint: parsing \"%.200s\": %s", text,
	         digits ? "value out of range" : "invalid syntax");
	if (form)
		quorumctl_fail(EXIT_BAD_ARGS, form, reason);
	quorumctl_fail(EXIT_BAD_ARGS, "%s", reason);
}

static json_t *split_urls(const char *text)
{
	json_t *urls = json_array();
	const char *start = text;
	for (;;) {
		const char *comma = strchr(start, ',');
		size_t length = comma ? (size_t)(comma - start) : strlen(start);
		json_array_append_new(urls, json_stringn(start, length));
		if (!comma)
			break;
		start = comma + 1;
	}
	return urls;
}

static char *join_strings(const json_t *array, const char *separator)
{
	size_t length = 1;
	for (size_t k = 0; k < json_array_size(array); k++)
		length += json_string_length(json_array_get(array, k)) + strlen(separator);
	char *text = calloc(1, length);
	for (size_t k = 0; k < json_array_size(array); k++) {
		if (k)
			strcat(text, separator);
		const char *item = json_string_value(json_array_get(array, k));
		strcat(text, item ? item : "");
	}
	return text;
}

static char *format_string(const char *format, ...) __attribute__((format(printf, 1, 2)));
static char *format_string(const char *format, ...)
{
	va_list args;
	va_start(args, format);
	char *text = NULL;
	if (vasprintf(&text, format, args) < 0)
		quorumctl_fail(EXIT_ERROR, "out of memory");
	va_end(args);
	return text;
}

static uint64_t cluster_id_of(const json_t *result)
{
	return quorumctl_hex_field(json_object_get(result, "header"), "cluster_id");
}

/* Go's %q for the strings etcdctl quotes (names and URLs). */
static void print_go_quoted(const char *text)
{
	putchar('"');
	for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
		if (*p == '"' || *p == '\\')
			printf("\\%c", *p);
		else if (*p == '\n')
			fputs("\\n", stdout);
		else if (*p == '\t')
			fputs("\\t", stdout);
		else if (*p < 0x20 || *p == 0x7f)
			printf("\\x%02x", *p);
		else
			putchar(*p);
	}
	putchar('"');
}

/* Single-quotes a word for a shell when it needs it. */
static void print_shell_word(const char *text)
{
	bool plain = *text != '\0';
	for (const char *p = text; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr("-_./:=,@%+", *p))
			plain = false;
	if (plain) {
		fputs(text, stdout);
		return;
	}
	putchar('\'');
	for (const char *p = text; *p; p++) {
		if (*p == '\'')
			fputs("'\\''", stdout);
		else
			putchar(*p);
	}
	putchar('\'');
}

static struct quorumctl_client client;

static void connect_client(void)
{
	quorumctl_connect(&client, socket_path, timeout_ms);
}

static void require_args(size_t count, int code, const char *message)
{
	if (positional_count != count)
		quorumctl_fail(code, "%s", message);
}

/* ---- member commands --------------------------------------------------------------------------------- */

static char ***member_rows(const json_t *members)
{
	size_t count = json_array_size(members);
	char ***rows = calloc(count ? count : 1, sizeof(*rows));
	for (size_t k = 0; k < count; k++) {
		const json_t *m = json_array_get(members, k);
		const char *name = json_string_value(json_object_get(m, "name"));
		rows[k] = calloc(6, sizeof(char *));
		rows[k][0] = format_string("%llx", (unsigned long long)quorumctl_hex_field(m, "id"));
		rows[k][1] = strdup(name && *name ? "started" : "unstarted");
		rows[k][2] = strdup(name ? name : "");
		rows[k][3] = join_strings(json_object_get(m, "peer_urls"), ",");
		rows[k][4] = join_strings(json_object_get(m, "client_urls"), ",");
		rows[k][5] = strdup(json_is_true(json_object_get(m, "is_learner")) ? "true" : "false");
	}
	return rows;
}

static void free_rows(char ***rows, size_t count, size_t columns)
{
	for (size_t k = 0; k < count; k++) {
		for (size_t c = 0; c < columns; c++)
			free(rows[k][c]);
		free(rows[k]);
	}
	free(rows);
}

static void print_member_list(const json_t *result)
{
	const json_t *members = json_object_get(result, "members");
	if (output == OUT_JSON) {
		struct gojson g = {0};
		gojson_raw(&g, "{\"header\":");
		gojson_header(&g, json_object_get(result, "header"));
		gojson_members(&g, members, true);
		gojson_raw(&g, "}");
		gojson_print(&g);
		return;
	}
	size_t count = json_array_size(members);
	char ***rows = member_rows(members);
	if (output == OUT_TABLE) {
		static const char *const header[] = {"ID", "STATUS", "NAME", "PEER ADDRS", "CLIENT ADDRS", "IS LEARNER"};
		quorumctl_print_table(stdout, header, 6, rows, count);
	} else {
		for (size_t k = 0; k < count; k++)
			printf("%s, %s, %s, %s, %s, %s\n", rows[k][0], rows[k][1], rows[k][2], rows[k][3], rows[k][4],
			       rows[k][5]);
	}
	free_rows(rows, count, 6);
}

/* JSON of {"header","members"} results (remove, update, promote). */
static void print_members_json(const json_t *result)
{
	struct gojson g = {0};
	gojson_raw(&g, "{\"header\":");
	gojson_header(&g, json_object_get(result, "header"));
	gojson_members(&g, json_object_get(result, "members"), true);
	gojson_raw(&g, "}");
	gojson_print(&g);
}

static void cmd_member_list(void)
{
	require_args(2, EXIT_BAD_ARGS, "member list takes no arguments");
	connect_client();
	json_t *result = quorumctl_call_ok(&client, "member_list", NULL);
	print_member_list(result);
	json_decref(result);
}

static json_t *member_add(const char *name, const char *peer_urls, bool learner)
{
	(void)name;
	json_t *arguments = json_object();
	json_object_set_new(arguments, "peer_urls", split_urls(peer_urls));
	json_object_set_new(arguments, "is_learner", json_boolean(learner));
	return quorumctl_call_ok(&client, "member_add", arguments);
}

/* What etcdctl prints after `member add` (simple output), then the quorumd command line. */
static void print_member_add(const json_t *result, const char *new_name, const char *peer_urls)
{
	const json_t *member = json_object_get(result, "member");
	uint64_t new_id = quorumctl_hex_field(member, "id");
	/* etcdctl 3.4 prints the same line for a learner (3.5 added "as learner"). */
	printf("Member %16llx added to cluster %16llx\n", (unsigned long long)new_id,
	       (unsigned long long)cluster_id_of(result));
	/* ETCD_INITIAL_CLUSTER: every member of the response in its order, each peer URL as name=URL, the new
	 * member under the name given here (etcdctl does the same; an unstarted member has an empty name). */
	const json_t *members = json_object_get(result, "members");
	size_t length = 1;
	for (size_t k = 0; k < json_array_size(members); k++) {
		const json_t *m = json_array_get(members, k);
		const json_t *urls = json_object_get(m, "peer_urls");
		for (size_t u = 0; u < json_array_size(urls); u++)
			length += strlen(new_name) + json_string_length(json_object_get(m, "name")) +
			          json_string_length(json_array_get(urls, u)) + 3;
	}
	char *cluster = calloc(1, length);
	for (size_t k = 0; k < json_array_size(members); k++) {
		const json_t *m = json_array_get(members, k);
		const char *name = quorumctl_hex_field(m, "id") == new_id
		                       ? new_name
		                       : (json_string_value(json_object_get(m, "name")) ?: "");
		const json_t *urls = json_object_get(m, "peer_urls");
		for (size_t u = 0; u < json_array_size(urls); u++) {
			if (*cluster)
				strcat(cluster, ",");
			strcat(cluster, name);
			strcat(cluster, "=");
			strcat(cluster, json_string_value(json_array_get(urls, u)) ?: "");
		}
	}
	printf("\nETCD_NAME=");
	print_go_quoted(new_name);
	printf("\nETCD_INITIAL_CLUSTER=");
	print_go_quoted(cluster);
	printf("\nETCD_INITIAL_ADVERTISE_PEER_URLS=");
	print_go_quoted(peer_urls);
	printf("\nETCD_INITIAL_CLUSTER_STATE=\"existing\"\n");
	/* Beyond etcdctl: the command that starts the new member (add --data-dir, client URLs and the token
	 * the cluster was created with, if not the default). */
	printf("\nquorumd --name ");
	print_shell_word(new_name);
	printf(" --initial-advertise-peer-urls ");
	print_shell_word(peer_urls);
	printf(" --listen-peer-urls ");
	print_shell_word(peer_urls);
	printf(" --initial-cluster ");
	print_shell_word(cluster);
	printf(" --initial-cluster-state existing\n");
	free(cluster);
}

static void cmd_member_add(void)
{
	if (positional_count < 3)
		quorumctl_fail(EXIT_BAD_ARGS, "member name not provided");
	if (positional_count > 3) {
		char text[1024] = "too many arguments";
		for (size_t k = 3; k < positional_count; k++)
			if (strncasecmp(positional[k], "http", 4) == 0)
				snprintf(text + strlen(text), sizeof(text) - strlen(text), ", did you mean --peer-urls=%s",
				         positional[k]);
		quorumctl_fail(EXIT_BAD_ARGS, "%s", text);
	}
	const char *name = positional[2];
	const char *peer_urls = flag_set[F_PEER_URLS] ? flag_value[F_PEER_URLS] : "";
	if (!*peer_urls)
		quorumctl_fail(EXIT_BAD_ARGS, "member peer urls not provided");
	connect_client();
	json_t *result = member_add(name, peer_urls, flag_true(F_LEARNER));
	if (output == OUT_JSON) {
		struct gojson g = {0};
		gojson_raw(&g, "{\"header\":");
		gojson_header(&g, json_object_get(result, "header"));
		gojson_raw(&g, ",\"member\":");
		gojson_member(&g, json_object_get(result, "member"));
		gojson_members(&g, json_object_get(result, "members"), true);
		gojson_raw(&g, "}");
		gojson_print(&g);
	} else if (output == OUT_TABLE) {
		unsupported_output();
	} else {
		print_member_add(result, name, peer_urls);
	}
	json_decref(result);
}

/* The seed's warning: removing a voter from a two-member cluster leaves one member whose loss, or a
 * failure before the removal is applied everywhere, stops the cluster; ask for explicit intent. */
static void refuse_two_member_removal(uint64_t id)
{
	json_t *list = quorumctl_call_ok(&client, "member_list", json_object());
	const json_t *members = json_object_get(list, "members");
	size_t voters = 0;
	bool target_votes = false;
	for (size_t k = 0; k < json_array_size(members); k++) {
		const json_t *member = json_array_get(members, k);
		if (json_is_true(json_object_get(member, "is_learner")))
			continue;
		voters++;
		target_votes |= quorumctl_hex_field(member, "id") == id;
	}
	json_decref(list);
	if (voters == 2 && target_votes)
		quorumctl_fail(EXIT_ERROR, "removing a member from a two-member cluster leaves a single member: if it "
		               "fails, or the removed member stops before the change is applied on both, the cluster "
		               "stops serving; repeat with --force to remove it anyway");
}

static void member_id_command(const char *command, const char *verb)
{
	if (positional_count < 3)
		quorumctl_fail(EXIT_BAD_ARGS, "member ID is not provided");
	if (positional_count > 3)
		quorumctl_fail(EXIT_BAD_ARGS, "member ID is not provided");
	uint64_t id = parse_id_argument(positional[2], "bad member ID arg (%s), expecting ID in Hex");
	json_t *arguments = json_object();
	char hex[17];
	json_object_set_new(arguments, "member_id", json_string(control_format_hex_id(id, hex)));
	if (strcmp(command, "member_update") == 0) {
		const char *peer_urls = flag_set[F_PEER_URLS] ? flag_value[F_PEER_URLS] : "";
		if (!*peer_urls)
			quorumctl_fail(EXIT_BAD_ARGS, "member peer urls not provided");
		json_object_set_new(arguments, "peer_urls", split_urls(peer_urls));
	}
	connect_client();
	if (strcmp(command, "member_remove") == 0 && !flag_true(F_FORCE))
		refuse_two_member_removal(id);
	json_t *result = quorumctl_call_ok(&client, command, arguments);
	if (output == OUT_JSON)
		print_members_json(result);
	else if (output == OUT_TABLE)
		unsupported_output();
	else
		printf("Member %16llx %s cluster %16llx\n", (unsigned long long)id, verb,
		       (unsigned long long)cluster_id_of(result));
	json_decref(result);
}

/* ---- member replace (beyond etcdctl) ------------------------------------------------------------------ */

static const json_t *find_member(const json_t *members, uint64_t id)
{
	for (size_t k = 0; k < json_array_size(members); k++)
		if (quorumctl_hex_field(json_array_get(members, k), "id") == id)
			return json_array_get(members, k);
	return NULL;
}

static void replace_stopped(int step, const char *what, uint64_t old_id, uint64_t new_id, const char *text)
{
	fflush(stdout);
	fprintf(stderr, "Error: %s\n", text);
	fprintf(stderr, "member replace stopped at step %d/4 (%s).\n", step, what);
	if (step == 1)
		fprintf(stderr, "Nothing changed: %llx is still a member and no member was added.\n",
		        (unsigned long long)old_id);
	else if (step <= 3)
		fprintf(stderr,
		        "Learner %llx is in the cluster and %llx is still a member. To go on: start the learner, then "
		        "`quorumctl member promote %llx` and `quorumctl member remove %llx`; to undo: `quorumctl member "
		        "remove %llx`.\n",
		        (unsigned long long)new_id, (unsigned long long)old_id, (unsigned long long)new_id,
		        (unsigned long long)old_id, (unsigned long long)new_id);
	else
		fprintf(stderr, "%llx is promoted; %llx is still a member: `quorumctl member remove %llx` finishes.\n",
		        (unsigned long long)new_id, (unsigned long long)old_id, (unsigned long long)old_id);
	exit(EXIT_ERROR);
}

/* Calls a command; on an error response stops the replace with the report. */
static json_t *replace_call(int step, const char *what, uint64_t old_id, uint64_t new_id, const char *command,
                            json_t *arguments, const char **error_text, json_t **error_response)
{
	json_t *response = quorumctl_call(&client, command, arguments);
	if (json_is_true(json_object_get(response, "ok"))) {
		json_t *result = json_incref(json_object_get(response, "result"));
		json_decref(response);
		return result ? result : json_object();
	}
	const char *text = json_string_value(json_object_get(response, "error"));
	if (error_text) { /* the caller decides */
		*error_text = text ? text : "malformed error response";
		*error_response = response;
		return NULL;
	}
	static char message[4096];
	snprintf(message, sizeof(message), "%s", text ? text : "malformed error response");
	json_decref(response);
	replace_stopped(step, what, old_id, new_id, message);
	return NULL;
}

static void cmd_member_replace(void)
{
	if (positional_count != 4)
		quorumctl_fail(EXIT_BAD_ARGS, "member replace needs the old member's ID and the new member's name");
	uint64_t old_id = parse_id_argument(positional[2], "bad member ID arg (%s), expecting ID in Hex");
	const char *name = positional[3];
	const char *peer_urls = flag_set[F_PEER_URLS] ? flag_value[F_PEER_URLS] : "";
	if (!*peer_urls)
		quorumctl_fail(EXIT_BAD_ARGS, "member peer urls not provided");
	if (output != OUT_SIMPLE)
		unsupported_output();
	long long catch_up_ms = flag_set[F_CATCH_UP_TIMEOUT]
	                            ? parse_duration_ms(flag_value[F_CATCH_UP_TIMEOUT], "--catch-up-timeout")
	                            : 10 * 60 * 1000;
	connect_client();
	char hex[17];

	/* Step 1: the old member must exist; add the new one as a learner. */
	json_t *list = replace_call(1, "add learner", old_id, 0, "member_list", NULL, NULL, NULL);
	bool old_found = find_member(json_object_get(list, "members"), old_id) != NULL;
	json_decref(list);
	if (!old_found)
		replace_stopped(1, "add learner", old_id, 0, "etcdserver: member not found");
	json_t *arguments = json_object();
	json_object_set_new(arguments, "peer_urls", split_urls(peer_urls));
	json_object_set_new(arguments, "is_learner", json_true());
	json_t *added = replace_call(1, "add learner", old_id, 0, "member_add", arguments, NULL, NULL);
	uint64_t new_id = quorumctl_hex_field(json_object_get(added, "member"), "id");
	printf("[1/4] ");
	print_member_add(added, name, peer_urls);
	json_decref(added);
	printf("[2/4] Waiting up to %llds for learner %llx to start and catch up with the leader...\n",
	       catch_up_ms / 1000, (unsigned long long)new_id);
	fflush(stdout);

	/* Steps 2 and 3: wait until the learner has started and is in sync, then promote. The leader decides
	 * "in sync" (etcd refuses the promote with "can only promote a learner member which is in sync with
	 * leader" until then), so the promote itself is the probe; the leader's index is reported meanwhile. */
	long long deadline = quorumctl_now_ms() + catch_up_ms;
	long long next_report = 0;
	bool started = false;
	for (;;) {
		quorumctl_set_timeout(&client, timeout_ms);
		/* The member list tells whether the learner has started and, when the node knows it (optional
		 * "match_index": the leader's view of how far the member's log matches), how far it is. */
		json_int_t match_index = -1;
		list = replace_call(2, "wait for the learner", old_id, new_id, "member_list", NULL, NULL, NULL);
		const json_t *learner = find_member(json_object_get(list, "members"), new_id);
		if (!learner) {
			json_decref(list);
			replace_stopped(2, "wait for the learner", old_id, new_id,
			                "the learner has disappeared from the member list");
		}
		const char *learner_name = json_string_value(json_object_get(learner, "name"));
		if (json_is_integer(json_object_get(learner, "match_index")))
			match_index = json_integer_value(json_object_get(learner, "match_index"));
		if (!started && learner_name && *learner_name) {
			started = true;
			printf("[2/4] Learner %llx has started.\n", (unsigned long long)new_id);
		}
		json_decref(list);
		json_int_t leader_index = -1;
		if (started && match_index >= 0) {
			json_t *status = replace_call(2, "wait for the learner", old_id, new_id, "endpoint_status", NULL,
			                              NULL, NULL);
			leader_index = json_integer_value(json_object_get(status, "raft_index"));
			json_decref(status);
		}
		/* Try the promote once the learner has started and, if its progress is known, has caught up. */
		if (started && (match_index < 0 || match_index >= leader_index)) {
			json_t *promote = json_object();
			json_object_set_new(promote, "member_id", json_string(control_format_hex_id(new_id, hex)));
			const char *error_text = NULL;
			json_t *error_response = NULL;
			json_t *result = replace_call(3, "promote", old_id, new_id, "member_promote", promote, &error_text,
			                              &error_response);
			if (result) {
				printf("[3/4] Member %16llx promoted in cluster %16llx\n", (unsigned long long)new_id,
				       (unsigned long long)cluster_id_of(result));
				json_decref(result);
				break;
			}
			if (!strstr(error_text, "in sync with leader")) {
				static char message[4096];
				snprintf(message, sizeof(message), "%s", error_text);
				json_decref(error_response);
				replace_stopped(3, "promote", old_id, new_id, message);
			}
			json_decref(error_response);
		}
		if (quorumctl_now_ms() >= deadline)
			replace_stopped(2, "wait for the learner", old_id, new_id,
			                started ? "timed out waiting for the learner to catch up with the leader"
			                        : "timed out waiting for the learner to start");
		if (quorumctl_now_ms() >= next_report) {
			json_t *status = replace_call(2, "wait for the learner", old_id, new_id, "endpoint_status", NULL,
			                              NULL, NULL);
			char progress[64] = "";
			if (match_index >= 0)
				snprintf(progress, sizeof(progress), " (at raft index %lld)", (long long)match_index);
			printf("[2/4] ... learner %s%s; leader %llx at raft index %lld\n",
			       started ? "not in sync yet" : "not started yet", progress,
			       (unsigned long long)quorumctl_hex_field(status, "leader"),
			       (long long)json_integer_value(json_object_get(status, "raft_index")));
			fflush(stdout);
			json_decref(status);
			next_report = quorumctl_now_ms() + 5000;
		}
		usleep(500 * 1000);
	}

	/* Step 4: remove the old member. */
	quorumctl_set_timeout(&client, timeout_ms);
	json_t *remove = json_object();
	json_object_set_new(remove, "member_id", json_string(control_format_hex_id(old_id, hex)));
	json_t *removed = replace_call(4, "remove the old member", old_id, new_id, "member_remove", remove, NULL, NULL);
	printf("[4/4] Member %16llx removed from cluster %16llx\n", (unsigned long long)old_id,
	       (unsigned long long)cluster_id_of(removed));
	json_decref(removed);
}

/* ---- endpoint status, move-leader --------------------------------------------------------------------- */

static void cmd_endpoint_status(void)
{
	require_args(2, EXIT_BAD_ARGS, "endpoint status takes no arguments");
	connect_client();
	json_t *result = quorumctl_call_ok(&client, "endpoint_status", NULL);
	const json_t *header = json_object_get(result, "header");
	uint64_t member_id = quorumctl_hex_field(header, "member_id");
	uint64_t leader = quorumctl_hex_field(result, "leader");
	bool learner = json_is_true(json_object_get(result, "is_learner"));
	const char *version = json_string_value(json_object_get(result, "version"));
	const json_t *errors = json_object_get(result, "errors");
	if (output == OUT_JSON) {
		struct gojson g = {0};
		bool first = false;
		gojson_raw(&g, "[{\"Endpoint\":");
		gojson_string(&g, socket_path, strlen(socket_path));
		gojson_raw(&g, ",\"Status\":{\"header\":");
		gojson_header(&g, header);
		if (version && *version) {
			gojson_raw(&g, ",\"version\":");
			gojson_string(&g, version, strlen(version));
		}
		char buf[200];
		struct {
			const char *name;
			uint64_t value;
		} numbers[] = {
		    {"dbSize", (uint64_t)json_integer_value(json_object_get(result, "db_size"))},
		    {"leader", leader},
		    {"raftIndex", (uint64_t)json_integer_value(json_object_get(result, "raft_index"))},
		    {"raftTerm", (uint64_t)json_integer_value(json_object_get(result, "raft_term"))},
		    {"raftAppliedIndex", (uint64_t)json_integer_value(json_object_get(result, "raft_applied_index"))},
		};
		for (size_t k = 0; k < 5; k++)
			if (numbers[k].value) {
				snprintf(buf, sizeof(buf), ",\"%s\":%llu", numbers[k].name, (unsigned long long)numbers[k].value);
				gojson_raw(&g, buf);
			}
		if (json_array_size(errors) > 0) {
			gojson_raw(&g, ",\"errors\":[");
			for (size_t k = 0; k < json_array_size(errors); k++) {
				const char *text = json_string_value(json_array_get(errors, k));
				if (k)
					gojson_raw(&g, ",");
				gojson_string(&g, text ? text : "", text ? strlen(text) : 0);
			}
			gojson_raw(&g, "]");
		}
		json_int_t in_use = json_integer_value(json_object_get(result, "db_size_in_use"));
		if (in_use) {
			snprintf(buf, sizeof(buf), ",\"dbSizeInUse\":%lld", (long long)in_use);
			gojson_raw(&g, buf);
		}
		if (learner)
			gojson_raw(&g, ",\"isLearner\":true");
		(void)first;
		gojson_raw(&g, "}}]");
		gojson_print(&g);
		json_decref(result);
		return;
	}
	char *row[10];
	char size[32];
	quorumctl_humanize_bytes((uint64_t)json_integer_value(json_object_get(result, "db_size")), size, sizeof(size));
	row[0] = strdup(socket_path);
	row[1] = format_string("%llx", (unsigned long long)member_id);
	row[2] = strdup(version ? version : "");
	row[3] = strdup(size);
	row[4] = strdup(leader == member_id && leader != 0 ? "true" : "false");
	row[5] = strdup(learner ? "true" : "false");
	row[6] = format_string("%lld", (long long)json_integer_value(json_object_get(result, "raft_term")));
	row[7] = format_string("%lld", (long long)json_integer_value(json_object_get(result, "raft_index")));
	row[8] = format_string("%lld", (long long)json_integer_value(json_object_get(result, "raft_applied_index")));
	row[9] = join_strings(errors, ", ");
	if (output == OUT_TABLE) {
		static const char *const header_names[] = {"ENDPOINT",   "ID",        "VERSION",    "DB SIZE",
		                                           "IS LEADER",  "IS LEARNER", "RAFT TERM", "RAFT INDEX",
		                                           "RAFT APPLIED INDEX", "ERRORS"};
		char **rows[1] = {row};
		quorumctl_print_table(stdout, header_names, 10, rows, 1);
	} else {
		for (int k = 0; k < 10; k++)
			printf("%s%s", row[k], k < 9 ? ", " : "\n");
	}
	for (int k = 0; k < 10; k++)
		free(row[k]);
	json_decref(result);
}

static void cmd_move_leader(void)
{
	require_args(2, EXIT_BAD_ARGS, "move-leader command needs 1 argument");
	uint64_t target = parse_id_argument(positional[1], NULL);
	connect_client();
	json_t *status = quorumctl_call_ok(&client, "endpoint_status", NULL);
	uint64_t leader = quorumctl_hex_field(status, "leader");
	json_decref(status);
	json_t *arguments = json_object();
	char hex[17];
	json_object_set_new(arguments, "target_id", json_string(control_format_hex_id(target, hex)));
	json_t *result = quorumctl_call_ok(&client, "move_leader", arguments);
	if (output == OUT_JSON) {
		struct gojson g = {0};
		gojson_raw(&g, "{\"header\":");
		gojson_header(&g, json_object_get(result, "header"));
		gojson_raw(&g, "}");
		gojson_print(&g);
	} else if (output == OUT_TABLE) {
		unsupported_output();
	} else {
		printf("Leadership transferred from %llx to %llx\n", (unsigned long long)leader,
		       (unsigned long long)target);
	}
	json_decref(result);
}

/* ---- put, get, del ------------------------------------------------------------------------------------- */

struct bytes {
	char *data;
	size_t length;
};

/* Sets key, range_end and value of a request; base64 for all of them when one is not plain text. */
static void set_kv_arguments(json_t *arguments, const struct bytes *key, const struct bytes *range_end,
                             const struct bytes *value)
{
	const struct bytes *items[3] = {key, range_end, value};
	const char *names[3] = {"key", "range_end", "value"};
	bool base64 = false;
	for (int k = 0; k < 3; k++) {
		if (!items[k])
			continue;
		bool used;
		json_t *probe = control_json_bytes(items[k]->data, items[k]->length, &used);
		json_decref(probe);
		base64 |= used;
	}
	for (int k = 0; k < 3; k++) {
		if (!items[k])
			continue;
		if (base64) {
			char *encoded = malloc(4 * ((items[k]->length + 2) / 3) + 1);
			control_base64_encode((const unsigned char *)items[k]->data, items[k]->length, encoded);
			json_object_set_new(arguments, names[k], json_string(encoded));
			free(encoded);
		} else {
			json_object_set_new(arguments, names[k], json_stringn(items[k]->data, items[k]->length));
		}
	}
	if (base64)
		json_object_set_new(arguments, "encoding", json_string("base64"));
}

/* clientv3.GetPrefixRangeEnd: the key with its last byte below 0xff incremented and the rest cut; "\0" when
 * every byte is 0xff. */
static struct bytes prefix_range_end(const char *key, size_t length)
{
	struct bytes end = {malloc(length + 1), 0};
	memcpy(end.data, key, length);
	for (size_t k = length; k-- > 0;) {
		if ((unsigned char)end.data[k] < 0xff) {
			end.data[k]++;
			end.length = k + 1;
			return end;
		}
	}
	end.data[0] = '\0';
	end.length = 1;
	return end;
}

static void print_header_only_json(const json_t *result)
{
	struct gojson g = {0};
	gojson_raw(&g, "{\"header\":");
	gojson_header(&g, json_object_get(result, "header"));
	gojson_raw(&g, "}");
	gojson_print(&g);
}

static void cmd_put(void)
{
	if (positional_count < 2 || positional_count > 3)
		quorumctl_fail(EXIT_BAD_ARGS, "put command needs 1 argument and input from stdin or 2 arguments");
	struct bytes key = {(char *)positional[1], strlen(positional[1])};
	struct bytes value = {NULL, 0};
	char *from_stdin = NULL;
	if (positional_count == 3) {
		value.data = (char *)positional[2];
		value.length = strlen(positional[2]);
	} else {
		size_t capacity = 4096, length = 0;
		from_stdin = malloc(capacity);
		size_t n;
		while ((n = fread(from_stdin + length, 1, capacity - length, stdin)) > 0) {
			length += n;
			if (length == capacity)
				from_stdin = realloc(from_stdin, capacity *= 2);
		}
		value.data = from_stdin;
		value.length = length;
	}
	json_t *arguments = json_object();
	set_kv_arguments(arguments, &key, NULL, &value);
	free(from_stdin);
	connect_client();
	json_t *result = quorumctl_call_ok(&client, "put", arguments);
	if (output == OUT_JSON)
		print_header_only_json(result);
	else if (output == OUT_TABLE)
		unsupported_output();
	else
		printf("OK\n");
	json_decref(result);
}

static void range_arguments(json_t *arguments, const char *what)
{
	if (positional_count < 2) {
		if (strcmp(what, "get") == 0)
			quorumctl_fail(EXIT_BAD_ARGS,
			               "get command needs one argument as key and an optional argument as range_end");
		quorumctl_fail(EXIT_BAD_ARGS, "del command needs one argument as key and an optional argument as range_end");
	}
	if (positional_count > 3)
		quorumctl_fail(EXIT_BAD_ARGS, "too many arguments");
	struct bytes key = {(char *)positional[1], strlen(positional[1])};
	struct bytes end = {NULL, 0};
	bool prefix = flag_true(F_PREFIX);
	if (positional_count == 3) {
		if (prefix)
			quorumctl_fail(EXIT_BAD_ARGS,
			               "too many arguments, only accept one argument when `--prefix` or `--from-key` is set");
		end.data = strdup(positional[2]);
		end.length = strlen(positional[2]);
	} else if (prefix) {
		if (key.length == 0) {
			key.data = "\0";
			key.length = 1;
			end.data = calloc(1, 2);
			end.length = 1;
		} else {
			end = prefix_range_end(key.data, key.length);
		}
	}
	set_kv_arguments(arguments, &key, end.data ? &end : NULL, NULL);
	free(end.data);
}

static void cmd_get(void)
{
	json_t *arguments = json_object();
	range_arguments(arguments, "get");
	const char *consistency = flag_set[F_CONSISTENCY] ? flag_value[F_CONSISTENCY] : "l";
	if (strcmp(consistency, "l") != 0 && strcmp(consistency, "s") != 0)
		quorumctl_fail(EXIT_BAD_FEATURE, "unknown consistency flag \"%s\"", consistency);
	json_object_set_new(arguments, "serializable", json_boolean(strcmp(consistency, "s") == 0));
	connect_client();
	json_t *result = quorumctl_call_ok(&client, "get", arguments);
	if (flag_true(F_PRINT_VALUE_ONLY) && output != OUT_SIMPLE)
		quorumctl_fail(EXIT_BAD_ARGS, "print-value-only is only for `--write-out=simple`");
	const json_t *kvs = json_object_get(result, "kvs");
	if (output == OUT_TABLE)
		unsupported_output();
	if (output == OUT_JSON) {
		/* pb.RangeResponse: keys and values are []byte, so Go writes them in base64. */
		struct gojson g = {0};
		gojson_raw(&g, "{\"header\":");
		gojson_header(&g, json_object_get(result, "header"));
		if (json_array_size(kvs) > 0) {
			gojson_raw(&g, ",\"kvs\":[");
			for (size_t k = 0; k < json_array_size(kvs); k++) {
				const json_t *kv = json_array_get(kvs, k);
				struct bytes key = {0}, value = {0};
				char error[128];
				if (control_json_get_bytes(kv, "key", &key.data, &key.length, error, sizeof(error)) < 0 ||
				    control_json_get_bytes(kv, "value", &value.data, &value.length, error, sizeof(error)) < 0)
					quorumctl_fail(EXIT_ERROR, "malformed response: %s", error);
				gojson_raw(&g, k ? ",{" : "{");
				bool first = true;
				const struct {
					const char *name;
					struct bytes *b;
					const char *field;
				} order[] = {{"key", &key, NULL},
				             {NULL, NULL, "create_revision"},
				             {NULL, NULL, "mod_revision"},
				             {NULL, NULL, "version"},
				             {"value", &value, NULL},
				             {NULL, NULL, "lease"}};
				for (size_t f = 0; f < 6; f++) {
					if (order[f].b) {
						if (order[f].b->length == 0)
							continue;
						char *encoded = malloc(4 * ((order[f].b->length + 2) / 3) + 1);
						size_t n = control_base64_encode((const unsigned char *)order[f].b->data,
						                                 order[f].b->length, encoded);
						gojson_raw(&g, first ? "\"" : ",\"");
						gojson_raw(&g, order[f].name);
						gojson_raw(&g, "\":");
						gojson_string(&g, encoded, n);
						free(encoded);
						first = false;
					} else {
						json_int_t v = json_integer_value(json_object_get(kv, order[f].field));
						if (v == 0)
							continue;
						char buf[80];
						snprintf(buf, sizeof(buf), "%s\"%s\":%lld", first ? "" : ",", order[f].field,
						         (long long)v);
						gojson_raw(&g, buf);
						first = false;
					}
				}
				gojson_raw(&g, "}");
				free(key.data);
				free(value.data);
			}
			gojson_raw(&g, "]");
		}
		json_int_t count = json_integer_value(json_object_get(result, "count"));
		if (count) {
			char buf[64];
			snprintf(buf, sizeof(buf), ",\"count\":%lld", (long long)count);
			gojson_raw(&g, buf);
		}
		gojson_raw(&g, "}");
		gojson_print(&g);
		json_decref(result);
		return;
	}
	for (size_t k = 0; k < json_array_size(kvs); k++) {
		const json_t *kv = json_array_get(kvs, k);
		struct bytes key = {0}, value = {0};
		char error[128];
		if (control_json_get_bytes(kv, "key", &key.data, &key.length, error, sizeof(error)) < 0 ||
		    control_json_get_bytes(kv, "value", &value.data, &value.length, error, sizeof(error)) < 0)
			quorumctl_fail(EXIT_ERROR, "malformed response: %s", error);
		if (!flag_true(F_PRINT_VALUE_ONLY)) {
			fwrite(key.data ? key.data : "", 1, key.length, stdout);
			fputc('\n', stdout);
		}
		fwrite(value.data ? value.data : "", 1, value.length, stdout);
		fputc('\n', stdout);
		free(key.data);
		free(value.data);
	}
	json_decref(result);
}

static void cmd_del(void)
{
	json_t *arguments = json_object();
	range_arguments(arguments, "del");
	connect_client();
	json_t *result = quorumctl_call_ok(&client, "del", arguments);
	if (output == OUT_JSON) {
		struct gojson g = {0};
		gojson_raw(&g, "{\"header\":");
		gojson_header(&g, json_object_get(result, "header"));
		json_int_t deleted = json_integer_value(json_object_get(result, "deleted"));
		if (deleted) {
			char buf[64];
			snprintf(buf, sizeof(buf), ",\"deleted\":%lld", (long long)deleted);
			gojson_raw(&g, buf);
		}
		gojson_raw(&g, "}");
		gojson_print(&g);
	} else if (output == OUT_TABLE) {
		unsupported_output();
	} else {
		printf("%lld\n", (long long)json_integer_value(json_object_get(result, "deleted")));
	}
	json_decref(result);
}

/* quorumd's own counters (beyond etcdctl): the free-form object, as indented JSON (compact with -w json). */
static void cmd_counters(void)
{
	require_args(1, EXIT_BAD_ARGS, "counters takes no arguments");
	connect_client();
	json_t *result = quorumctl_call_ok(&client, "counters", NULL);
	char *text = json_dumps(result, output == OUT_JSON ? JSON_COMPACT : JSON_INDENT(2));
	if (text)
		printf("%s\n", text);
	free(text);
	json_decref(result);
}

/* ---- dispatch ------------------------------------------------------------------------------------------ */

/* Flags that only some commands take: anything else is cobra's "unknown flag". */
static void allow_only(const enum flag_id *allowed, size_t count)
{
	static const enum flag_id local[] = {F_PEER_URLS, F_LEARNER, F_CONSISTENCY, F_PRINT_VALUE_ONLY, F_PREFIX,
	                                     F_CATCH_UP_TIMEOUT, F_FORCE};
	for (size_t k = 0; k < sizeof(local) / sizeof(local[0]); k++) {
		if (!flag_set[local[k]])
			continue;
		bool ok = false;
		for (size_t a = 0; a < count; a++)
			ok |= allowed[a] == local[k];
		if (!ok)
			quorumctl_fail(EXIT_ERROR, "unknown flag: --%s", flag_specs[local[k]].name);
	}
}

#define ALLOW(...)                                                                                  \
	do {                                                                                            \
		static const enum flag_id allowed_[] = {__VA_ARGS__};                                       \
		allow_only(allowed_, sizeof(allowed_) / sizeof(allowed_[0]));                               \
	} while (0)

int main(int argc, char **argv)
{
	client.fd = -1;
	parse_arguments(argc, argv);
	if (flag_true(F_HELP) || positional_count == 0) {
		fputs(usage_text, stdout);
		return flag_true(F_HELP) ? EXIT_OK : EXIT_OK;
	}
	if (flag_set[F_ENDPOINTS])
		quorumctl_fail(EXIT_ERROR, "--endpoints is not supported until quorumd's client API exists; quorumctl "
		                           "talks to one node through --control-socket (or QUORUMCTL_CONTROL_SOCKET)");
	const char *format = flag_set[F_WRITE_OUT] ? flag_value[F_WRITE_OUT] : "simple";
	if (strcmp(format, "simple") == 0)
		output = OUT_SIMPLE;
	else if (strcmp(format, "table") == 0)
		output = OUT_TABLE;
	else if (strcmp(format, "json") == 0)
		output = OUT_JSON;
	else
		quorumctl_fail(EXIT_BAD_FEATURE, "unsupported output format \"%s\" (quorumctl prints simple, table or json)",
		               format);
	if (flag_set[F_COMMAND_TIMEOUT])
		timeout_ms = parse_duration_ms(flag_value[F_COMMAND_TIMEOUT], "--command-timeout");
	socket_path = flag_set[F_CONTROL_SOCKET] ? flag_value[F_CONTROL_SOCKET] : getenv("QUORUMCTL_CONTROL_SOCKET");
	if (!socket_path || !*socket_path)
		socket_path = "default.etcd/control.sock";

	const char *command = positional[0];
	const char *sub = positional_count > 1 ? positional[1] : NULL;
	if (strcmp(command, "member") == 0) {
		if (!sub) {
			fputs(usage_text, stdout);
			return EXIT_OK;
		}
		if (strcmp(sub, "list") == 0) {
			ALLOW(F_HELP);
			cmd_member_list();
		} else if (strcmp(sub, "add") == 0) {
			ALLOW(F_PEER_URLS, F_LEARNER);
			cmd_member_add();
		} else if (strcmp(sub, "remove") == 0) {
			ALLOW(F_FORCE);
			member_id_command("member_remove", "removed from");
		} else if (strcmp(sub, "update") == 0) {
			ALLOW(F_PEER_URLS);
			member_id_command("member_update", "updated in");
		} else if (strcmp(sub, "promote") == 0) {
			ALLOW(F_HELP);
			member_id_command("member_promote", "promoted in");
		} else if (strcmp(sub, "replace") == 0) {
			ALLOW(F_PEER_URLS, F_CATCH_UP_TIMEOUT);
			cmd_member_replace();
		} else {
			fflush(stdout);
			fprintf(stderr, "Error: unknown command \"%s\" for \"quorumctl member\"\n"
			                "Run 'quorumctl --help' for usage.\n", sub);
			return EXIT_ERROR;
		}
	} else if (strcmp(command, "endpoint") == 0) {
		if (!sub || strcmp(sub, "status") != 0) {
			fprintf(stderr, "Error: unknown command \"%s\" for \"quorumctl endpoint\"\nRun 'quorumctl --help' for "
			                "usage.\n", sub ? sub : "");
			return EXIT_ERROR;
		}
		ALLOW(F_HELP);
		cmd_endpoint_status();
	} else if (strcmp(command, "move-leader") == 0) {
		ALLOW(F_HELP);
		cmd_move_leader();
	} else if (strcmp(command, "put") == 0) {
		ALLOW(F_HELP);
		cmd_put();
	} else if (strcmp(command, "get") == 0) {
		ALLOW(F_CONSISTENCY, F_PRINT_VALUE_ONLY, F_PREFIX);
		cmd_get();
	} else if (strcmp(command, "del") == 0) {
		ALLOW(F_PREFIX);
		cmd_del();
	} else if (strcmp(command, "counters") == 0) {
		ALLOW(F_HELP);
		cmd_counters();
	} else {
		fprintf(stderr, "Error: unknown command \"%s\" for \"quorumctl\"\nRun 'quorumctl --help' for usage.\n",
		        command);
		return EXIT_ERROR;
	}
	quorumctl_close(&client);
	fflush(stdout);
	return ferror(stdout) ? EXIT_ERROR : EXIT_OK;
}
