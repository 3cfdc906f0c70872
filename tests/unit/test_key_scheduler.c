/* The key scheduler (--order-by): never two messages of one key out at once, each key's messages
 * run in delivery order, and every message leaves exactly once, checked against a model over
 * random arrivals, completions, give-backs, overdue waits and lost connections. */

#include "key_scheduler.h"
#include "test.h"

#include <stdio.h>
#include <string.h>

static ja_order_decision arrive(ja_key_scheduler *s, ja_order_node *node, const char *key,
                                uint64_t now)
{
    return ja_key_scheduler_arrive(s, node, key, strlen(key), now);
}

TEST(one_key_runs_one_at_a_time_in_order)
{
    ja_key_scheduler s;
    ASSERT_EQ(ja_key_scheduler_init(&s, 8), 0);
    ja_order_node n[3];
    ASSERT_EQ(arrive(&s, &n[0], "A", 1), JA_ORDER_RUN);
    ASSERT_EQ(arrive(&s, &n[1], "A", 2), JA_ORDER_WAIT);
    ASSERT_EQ(arrive(&s, &n[2], "A", 3), JA_ORDER_WAIT);
    ASSERT_EQ(s.live_keys, 1);
    ASSERT_EQ(s.waiting, 2);
    ASSERT_PTR_EQ(ja_key_scheduler_finish(&s, &n[0]), &n[1]);
    ASSERT_PTR_EQ(ja_key_scheduler_finish(&s, &n[1]), &n[2]);
    ASSERT_NULL(ja_key_scheduler_finish(&s, &n[2]));
    ASSERT_EQ(s.live_keys, 0);
    ASSERT_EQ(s.waiting, 0);
    ja_key_scheduler_free(&s);
}

TEST(other_keys_are_not_held_up)
{
    ja_key_scheduler s;
    ASSERT_EQ(ja_key_scheduler_init(&s, 8), 0);
    ja_order_node n[4];
    ASSERT_EQ(arrive(&s, &n[0], "A", 1), JA_ORDER_RUN);
    ASSERT_EQ(arrive(&s, &n[1], "A", 1), JA_ORDER_WAIT);
    ASSERT_EQ(arrive(&s, &n[2], "B", 1), JA_ORDER_RUN);
    ASSERT_EQ(arrive(&s, &n[3], "AB", 1), JA_ORDER_RUN);
    ASSERT_EQ(s.live_keys, 3);
    ja_key_scheduler_free(&s);
}

TEST(a_key_given_back_takes_its_waiting_messages_in_order)
{
    ja_key_scheduler s;
    ASSERT_EQ(ja_key_scheduler_init(&s, 8), 0);
    ja_order_node n[4];
    ASSERT_EQ(arrive(&s, &n[0], "A", 1), JA_ORDER_RUN);
    ASSERT_EQ(arrive(&s, &n[1], "A", 2), JA_ORDER_WAIT);
    ASSERT_EQ(arrive(&s, &n[2], "B", 2), JA_ORDER_RUN);
    ASSERT_EQ(arrive(&s, &n[3], "A", 3), JA_ORDER_WAIT);
    ja_order_node *back = ja_key_scheduler_give_back(&s, &n[0]);
    ASSERT(back == &n[1] && n[1].next == &n[3] && n[3].next == NULL);
    ASSERT_EQ(s.live_keys, 1);
    ASSERT_EQ(s.waiting, 0);
    /* The key starts afresh. */
    ASSERT_EQ(arrive(&s, &n[1], "A", 4), JA_ORDER_RUN);
    ja_key_scheduler_free(&s);
}

TEST(the_longest_wait_is_the_oldest_waiting_message)
{
    ja_key_scheduler s;
    ASSERT_EQ(ja_key_scheduler_init(&s, 8), 0);
    ja_order_node n[5];
    ASSERT_EQ(ja_key_scheduler_oldest_wait(&s), UINT64_MAX);
    ASSERT_EQ(arrive(&s, &n[0], "A", 1), JA_ORDER_RUN);
    ASSERT_EQ(ja_key_scheduler_oldest_wait(&s), UINT64_MAX); /* running is not waiting */
    ASSERT_EQ(arrive(&s, &n[1], "A", 5), JA_ORDER_WAIT);
    ASSERT_EQ(arrive(&s, &n[2], "A", 20), JA_ORDER_WAIT);
    ASSERT_EQ(arrive(&s, &n[3], "B", 1), JA_ORDER_RUN);
    ASSERT_EQ(arrive(&s, &n[4], "B", 15), JA_ORDER_WAIT);
    ASSERT_EQ(ja_key_scheduler_oldest_wait(&s), 5);
    ASSERT_PTR_EQ(ja_key_scheduler_finish(&s, &n[0]), &n[1]);
    ASSERT_EQ(ja_key_scheduler_oldest_wait(&s), 15);
    ASSERT_PTR_EQ(ja_key_scheduler_finish(&s, &n[3]), &n[4]);
    ASSERT_EQ(ja_key_scheduler_oldest_wait(&s), 20);
    ja_key_scheduler_free(&s);
}

TEST(no_more_keys_than_capacity)
{
    ja_key_scheduler s;
    ASSERT_EQ(ja_key_scheduler_init(&s, 2), 0);
    ja_order_node n[3];
    ASSERT_EQ(arrive(&s, &n[0], "A", 1), JA_ORDER_RUN);
    ASSERT_EQ(arrive(&s, &n[1], "B", 1), JA_ORDER_RUN);
    ASSERT_EQ(arrive(&s, &n[2], "C", 1), JA_ORDER_FULL);
    ASSERT_NULL(ja_key_scheduler_finish(&s, &n[0]));
    ASSERT_EQ(arrive(&s, &n[2], "C", 1), JA_ORDER_RUN);
    ja_key_scheduler_free(&s);
}

/* ---- against a model ---- */

enum { CAPACITY = 64, KEYS = 12, MESSAGES = 4096 };

typedef enum { HELD_NO, HELD_RUNNING, HELD_WAITING } held_state;

typedef struct {
    ja_order_node node;
    int key;
    long seq; /* delivery order */
    held_state held;
} message;

static message messages[MESSAGES];

static struct {
    int queue[KEYS][MESSAGES]; /* per key: running first, then waiting, in delivery order */
    int length[KEYS];
    long last_started[KEYS]; /* the seq of the last message of the key that ran */
    int held;
    long started, ended;
} model;

static uint64_t rng = 88172645463325252ull;
static unsigned next_random(unsigned bound)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (unsigned)(rng % bound);
}

static message *message_of(ja_order_node *node)
{
    return (message *)((char *)node - offsetof(message, node));
}

static void key_name(int key, char out[16])
{
    snprintf(out, 16, "account-%d", key);
}

static void started(message *m)
{
    ASSERT_EQ(m->held, HELD_WAITING);
    ASSERT_EQ(model.length[m->key] > 0 ? model.queue[m->key][0] : -1, (int)(m - messages));
    /* Delivery order within the key. */
    ASSERT_GT(m->seq, model.last_started[m->key]);
    model.last_started[m->key] = m->seq;
    m->held = HELD_RUNNING;
    model.started++;
}

static void left(message *m)
{
    m->held = HELD_NO;
    model.held--;
    model.ended++;
}

static void remove_front(int key)
{
    memmove(&model.queue[key][0], &model.queue[key][1],
            (size_t)(model.length[key] - 1) * sizeof(int));
    model.length[key]--;
}

/* Every message of a returned list, in the order the model keeps for its key. */
static void check_returned(ja_order_node *list, int key_or_any)
{
    for (ja_order_node *n = list; n;) {
        ja_order_node *next = n->next;
        message *m = message_of(n);
        ASSERT_EQ(m->held, HELD_WAITING);
        if (key_or_any >= 0)
            ASSERT_EQ(m->key, key_or_any);
        /* Its key's model queue: the first waiting entry must be this one. */
        int k = m->key;
        int first_waiting =
            model.length[k] > 0 && messages[model.queue[k][0]].held == HELD_RUNNING ? 1 : 0;
        ASSERT_GT(model.length[k], first_waiting);
        ASSERT_EQ(model.queue[k][first_waiting], (int)(m - messages));
        memmove(&model.queue[k][first_waiting], &model.queue[k][first_waiting + 1],
                (size_t)(model.length[k] - first_waiting - 1) * sizeof(int));
        model.length[k]--;
        left(m);
        n = next;
    }
}

static int random_running(void)
{
    int start = (int)next_random(KEYS);
    for (int i = 0; i < KEYS; i++) {
        int k = (start + i) % KEYS;
        if (model.length[k] > 0 && messages[model.queue[k][0]].held == HELD_RUNNING)
            return model.queue[k][0];
    }
    return -1;
}

static void check_counts(const ja_key_scheduler *s)
{
    size_t keys = 0, waiting = 0;
    for (int k = 0; k < KEYS; k++) {
        int running = 0;
        for (int i = 0; i < model.length[k]; i++) {
            if (messages[model.queue[k][i]].held == HELD_RUNNING)
                running++;
            else
                waiting++;
        }
        ASSERT_LE(running, 1); /* never two calls for one key */
        if (running)
            keys++;
    }
    ASSERT_EQ(s->live_keys, keys);
    ASSERT_EQ(s->waiting, waiting);
}

TEST(model_random_operations)
{
    ja_key_scheduler s;
    ASSERT_EQ(ja_key_scheduler_init(&s, CAPACITY), 0);
    for (int k = 0; k < KEYS; k++)
        model.last_started[k] = -1;
    long seq = 0;
    int next_message = 0;
    uint64_t now = 1000;
    while (next_message < MESSAGES || model.held > 0) {
        now += next_random(3);
        unsigned op = next_random(100);
        if (op < 45 && next_message < MESSAGES && model.held < CAPACITY) {
            message *m = &messages[next_message++];
            m->key = (int)next_random(KEYS);
            m->seq = seq++;
            m->held = HELD_WAITING;
            char name[16];
            key_name(m->key, name);
            ja_order_decision d = ja_key_scheduler_arrive(&s, &m->node, name, strlen(name), now);
            ASSERT_NE(d, JA_ORDER_FULL);
            bool key_idle = model.length[m->key] == 0;
            model.queue[m->key][model.length[m->key]++] = (int)(m - messages);
            model.held++;
            ASSERT_EQ(d == JA_ORDER_RUN, key_idle);
            if (d == JA_ORDER_RUN)
                started(m);
        } else if (op < 85) {
            int i = random_running();
            if (i < 0)
                continue;
            message *m = &messages[i];
            int k = m->key;
            ja_order_node *next = ja_key_scheduler_finish(&s, &m->node);
            remove_front(k);
            left(m);
            if (model.length[k] > 0) {
                ASSERT_PTR_EQ(next, &messages[model.queue[k][0]].node);
                started(message_of(next));
            } else {
                ASSERT_NULL(next);
            }
        } else if (op < 93) {
            int i = random_running();
            if (i < 0)
                continue;
            message *m = &messages[i];
            int k = m->key;
            ja_order_node *back = ja_key_scheduler_give_back(&s, &m->node);
            remove_front(k);
            left(m);
            check_returned(back, k);
            ASSERT_EQ(model.length[k], 0);
        } else if (op < 98) {
            uint64_t oldest = UINT64_MAX;
            for (int k = 0; k < KEYS; k++)
                for (int i = 1; i < model.length[k]; i++)
                    if (messages[model.queue[k][i]].node.arrived_ms < oldest)
                        oldest = messages[model.queue[k][i]].node.arrived_ms;
            ASSERT_EQ(ja_key_scheduler_oldest_wait(&s), oldest);
        } else {
            /* The consumer connection is lost: running messages are forgotten by the caller. */
            ja_order_node *back = ja_key_scheduler_clear(&s);
            check_returned(back, -1);
            for (int k = 0; k < KEYS; k++) {
                if (model.length[k] > 0) {
                    ASSERT_EQ(model.length[k], 1);
                    left(&messages[model.queue[k][0]]);
                    model.length[k] = 0;
                }
            }
        }
        check_counts(&s);
    }
    ASSERT_EQ(model.ended, MESSAGES);
    ASSERT_EQ(s.live_keys, 0);
    ASSERT_EQ(s.waiting, 0);
    ja_key_scheduler_free(&s);
}

static const test_case tests[] = {
    TEST_ENTRY(one_key_runs_one_at_a_time_in_order),
    TEST_ENTRY(other_keys_are_not_held_up),
    TEST_ENTRY(a_key_given_back_takes_its_waiting_messages_in_order),
    TEST_ENTRY(the_longest_wait_is_the_oldest_waiting_message),
    TEST_ENTRY(no_more_keys_than_capacity),
    TEST_ENTRY(model_random_operations),
};

int main(int argc, char **argv)
{
    return RUN_TESTS(tests);
}
