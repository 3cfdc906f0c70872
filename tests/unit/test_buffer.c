/* The one growable array: appends up to a limit, keeps its memory between uses, gives a large
 * allocation back once empty. */

#include "buffer.h"
#include "test.h"

#include <errno.h>

TEST(appends_keep_every_byte_in_order_across_growth)
{
    ja_buffer b = {0};
    for (int i = 0; i < 10000; i++) {
        unsigned char byte = (unsigned char)(i * 7);
        ASSERT_EQ(ja_buffer_append(&b, &byte, 1, SIZE_MAX), 0);
    }
    ASSERT_EQ(b.len, 10000);
    ASSERT_GE(b.cap, b.len);
    for (int i = 0; i < 10000; i++)
        ASSERT_EQ((unsigned char)b.data[i], (unsigned char)(i * 7));
    ja_buffer_free(&b);
    ASSERT_NULL(b.data);
    ASSERT_EQ(b.cap, 0);
}

TEST(an_append_past_the_limit_changes_nothing)
{
    ja_buffer b = {0};
    ASSERT_EQ(ja_buffer_append(&b, "abcd", 4, 6), 0);
    ASSERT_EQ(ja_buffer_append(&b, "efg", 3, 6), -EMSGSIZE);
    ASSERT_EQ(b.len, 4);
    ASSERT_EQ(ja_buffer_append(&b, "ef", 2, 6), 0);
    ASSERT_EQ(b.len, 6);
    ja_buffer_free(&b);
}

TEST(reserve_makes_room_without_using_it)
{
    ja_buffer b = {0};
    ASSERT_EQ(ja_buffer_reserve(&b, 5000), 0);
    ASSERT_EQ(b.len, 0);
    ASSERT_GE(b.cap, 5000);
    char *before = b.data;
    ASSERT_EQ(ja_buffer_reserve(&b, 4000), 0); /* room already there: no new allocation */
    ASSERT_PTR_EQ(b.data, before);
    ASSERT_EQ(ja_buffer_reserve(&b, SIZE_MAX), -ENOMEM);
    ASSERT_PTR_EQ(b.data, before);
    ja_buffer_free(&b);
}

TEST(a_grown_buffer_gives_its_memory_back_once_empty)
{
    ja_buffer b = {0};
    static char big[2 * 1024 * 1024];
    ASSERT_EQ(ja_buffer_append(&b, big, sizeof big, SIZE_MAX), 0);
    ja_buffer_trim(&b, 1024 * 1024); /* not empty yet: kept */
    ASSERT_NOT_NULL(b.data);
    b.len = 0;                           /* used */
    ja_buffer_trim(&b, 4 * 1024 * 1024); /* small enough: kept */
    ASSERT_NOT_NULL(b.data);
    ja_buffer_trim(&b, 1024 * 1024);
    ASSERT_NULL(b.data);
    ASSERT_EQ(b.cap, 0);
    ja_buffer_free(&b);
}

int main(int argc, char **argv)
{
    static const test_case tests[] = {
        TEST_ENTRY(appends_keep_every_byte_in_order_across_growth),
        TEST_ENTRY(an_append_past_the_limit_changes_nothing),
        TEST_ENTRY(reserve_makes_room_without_using_it),
        TEST_ENTRY(a_grown_buffer_gives_its_memory_back_once_empty),
    };
    return RUN_TESTS(tests);
}
