#include "delivery_limit.h"

#include "amqp_headers.h"
#include <string.h>

/* The broker writes x-delivery-count as a signed 64-bit integer ('l'); other integer kinds are
 * taken too, so a producer's or another client's spelling reads the same. */
static uint32_t count_of(const amqp_field_value_t *v)
{
    int64_t n;
    switch (v->kind) {
    case AMQP_FIELD_KIND_I8:
        n = v->value.i8;
        break;
    case AMQP_FIELD_KIND_U8:
        n = v->value.u8;
        break;
    case AMQP_FIELD_KIND_I16:
        n = v->value.i16;
        break;
    case AMQP_FIELD_KIND_U16:
        n = v->value.u16;
        break;
    case AMQP_FIELD_KIND_I32:
        n = v->value.i32;
        break;
    case AMQP_FIELD_KIND_U32:
        n = v->value.u32;
        break;
    case AMQP_FIELD_KIND_I64:
        n = v->value.i64;
        break;
    case AMQP_FIELD_KIND_U64:
        n = v->value.u64 > UINT32_MAX ? UINT32_MAX : (int64_t)v->value.u64;
        break;
    default:
        return 0;
    }
    return n < 0 ? 0 : n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
}

ja_delivery_counts ja_delivery_limit_counts(const amqp_basic_properties_t *props)
{
    const amqp_field_value_t *delivery = ja_amqp_headers_get(props, JA_DELIVERY_COUNT_HEADER);
    const amqp_field_value_t *acquired = ja_amqp_headers_get(props, JA_ACQUIRED_COUNT_HEADER);
    const amqp_field_value_t *renewals = ja_amqp_headers_get(props, JA_RENEWALS_HEADER);
    return (ja_delivery_counts){.delivery_count = delivery ? count_of(delivery) : 0,
                                .acquired_count = acquired ? count_of(acquired) : 0,
                                .renewals = renewals ? count_of(renewals) : 0};
}

uint32_t ja_delivery_limit_renew_at(int limit)
{
    if (limit <= 0)
        return 0;
    uint32_t margin = ((uint32_t)limit + 3) / 4;
    return (uint32_t)limit - margin;
}

bool ja_delivery_limit_must_renew(int limit, uint32_t delivery_count)
{
    return limit > 0 && delivery_count >= ja_delivery_limit_renew_at(limit);
}
