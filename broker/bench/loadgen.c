/*
 * A librdkafka load generator for broker/bench/produce_consume.py.
 *
 * The Python client spends more CPU per message than the broker does, so
 * on a small machine it, not the broker, set the pace. This drives
 * librdkafka from C with the same settings and reports one JSON line.
 *
 *   loadgen produce BOOTSTRAP TOPIC MESSAGES SIZE ACKS
 *   loadgen consume BOOTSTRAP TOPIC MESSAGES
 *   loadgen version
 *
 * produce: msgs/s, MB/s, p50/p99 latency from produce() to the delivery
 * report (ms), after one untimed warm-up message; acks=all also turns
 * on idempotence. Every message goes to
 * partition 0 and must be acknowledged without error, or the exit status
 * is 1. consume: reads MESSAGES messages of partition 0 from offset 0
 * (the warm-up message included).
 *
 * Build: gcc -O2 -o loadgen loadgen.c -lrdkafka   (Debian: librdkafka-dev)
 */
#include <librdkafka/rdkafka.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void set(rd_kafka_conf_t *conf, const char *key, const char *value) {
    char err[512];
    if (rd_kafka_conf_set(conf, key, value, err, sizeof err) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "loadgen: %s=%s: %s\n", key, value, err);
        exit(2);
    }
}

/* Send times by message number, and latencies as reports arrive. */
static double *sent_at;
static double *latency;
static long delivered;
static long failed;

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    (void)rk;
    (void)opaque;
    long i = (long)(intptr_t)m->_private;
    if (m->err) {
        if (failed++ < 5)
            fprintf(stderr, "loadgen: message %ld: %s\n", i, rd_kafka_err2str(m->err));
        return;
    }
    latency[delivered++] = now_s() - sent_at[i];
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int produce(const char *bootstrap, const char *topic, long n, long size, const char *acks) {
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    set(conf, "bootstrap.servers", bootstrap);
    set(conf, "acks", acks);
    set(conf, "linger.ms", "5");
    set(conf, "batch.size", "1048576");
    set(conf, "queue.buffering.max.messages", "1000000");
    set(conf, "enable.idempotence", strcmp(acks, "all") == 0 ? "true" : "false");
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (!rk) {
        fprintf(stderr, "loadgen: %s\n", err);
        return 2;
    }
    char *payload = malloc(size);
    for (long i = 0; i < size; i++)
        payload[i] = (char)(rand() & 0xff);
    sent_at = calloc(n, sizeof *sent_at);
    latency = calloc(n, sizeof *latency);

    /* One message first, so connecting and fetching metadata (which may
     * auto-create the topic) are not timed. */
    rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(0),
                      RD_KAFKA_V_VALUE(payload, (size_t)size), RD_KAFKA_V_OPAQUE((void *)0),
                      RD_KAFKA_V_END);
    if (rd_kafka_flush(rk, 30 * 1000) != RD_KAFKA_RESP_ERR_NO_ERROR || delivered != 1) {
        fprintf(stderr, "loadgen: the warm-up message was not delivered\n");
        return 1;
    }
    delivered = 0;

    double t0 = now_s();
    for (long i = 0; i < n; i++) {
        sent_at[i] = now_s();
        for (;;) {
            rd_kafka_resp_err_t e = rd_kafka_producev(
                rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(0),
                RD_KAFKA_V_VALUE(payload, (size_t)size), RD_KAFKA_V_OPAQUE((void *)(intptr_t)i),
                RD_KAFKA_V_END);
            if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
                break;
            if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                fprintf(stderr, "loadgen: produce: %s\n", rd_kafka_err2str(e));
                return 1;
            }
            rd_kafka_poll(rk, 1);
        }
        if ((i & 1023) == 0)
            rd_kafka_poll(rk, 0);
    }
    rd_kafka_resp_err_t fe = rd_kafka_flush(rk, 120 * 1000);
    double secs = now_s() - t0;
    if (fe != RD_KAFKA_RESP_ERR_NO_ERROR || failed > 0 || delivered != n) {
        fprintf(stderr, "loadgen: %ld of %ld delivered, %ld failed (%s)\n", delivered, n, failed,
                rd_kafka_err2str(fe));
        return 1;
    }
    qsort(latency, n, sizeof *latency, cmp_double);
    printf("{\"msgs_per_s\": %.1f, \"mb_per_s\": %.2f, \"p50_ms\": %.3f, \"p99_ms\": %.3f}\n",
           n / secs, n * (double)size / secs / 1e6, latency[n / 2] * 1e3,
           latency[(long)(n * 0.99)] * 1e3);
    rd_kafka_destroy(rk);
    return 0;
}

static int consume(const char *bootstrap, const char *topic, long n) {
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    set(conf, "bootstrap.servers", bootstrap);
    set(conf, "group.id", "loadgen");
    set(conf, "enable.auto.commit", "false");
    set(conf, "fetch.max.bytes", "52428800");
    set(conf, "max.partition.fetch.bytes", "10485760");
    /* librdkafka stops fetching while more than queued.min.messages (default
     * 100000) wait in its queue and looks again only on a 1 s timer: one
     * 10 MiB fetch of 100-byte messages is 90,000 of them, so runs stalled
     * 0.5-2 s at random. The 64 MiB queued.max.messages.kbytes still bounds
     * the queue. */
    set(conf, "queued.min.messages", "10000000");
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    if (!rk) {
        fprintf(stderr, "loadgen: %s\n", err);
        return 2;
    }
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(parts, topic, 0)->offset = 0;
    rd_kafka_assign(rk, parts);
    rd_kafka_topic_partition_list_destroy(parts);

    long got = 0;
    double bytes = 0, t0 = now_s(), idle_since = t0;
    while (got < n) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 1000);
        if (!m) {
            if (now_s() - idle_since > 60) {
                fprintf(stderr, "loadgen: consumed %ld of %ld, then nothing for 60 s\n", got, n);
                return 1;
            }
            continue;
        }
        if (!m->err) {
            got++;
            bytes += m->len;
            idle_since = now_s();
        } else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            fprintf(stderr, "loadgen: consume: %s\n", rd_kafka_message_errstr(m));
        }
        rd_kafka_message_destroy(m);
    }
    double secs = now_s() - t0;
    printf("{\"msgs_per_s\": %.1f, \"mb_per_s\": %.2f}\n", got / secs, bytes / secs / 1e6);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 2 && strcmp(argv[1], "version") == 0) {
        printf("%s\n", rd_kafka_version_str());
        return 0;
    }
    if (argc == 7 && strcmp(argv[1], "produce") == 0)
        return produce(argv[2], argv[3], atol(argv[4]), atol(argv[5]), argv[6]);
    if (argc == 5 && strcmp(argv[1], "consume") == 0)
        return consume(argv[2], argv[3], atol(argv[4]));
    fprintf(stderr,
            "usage: loadgen produce BOOTSTRAP TOPIC MESSAGES SIZE ACKS\n"
            "       loadgen consume BOOTSTRAP TOPIC MESSAGES\n");
    return 2;
}
