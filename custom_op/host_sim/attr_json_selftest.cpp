/* C++ self-test of the ONNX plugin's attribute reader (framework/onnx_plugin/rope_attr_json.h): the JSON
 * GE produces for a RoPECustomer / RoPEBuiltin node (hicann/ge message2operator.cc dumps
 * {"attribute": [AttributeProto...]} with nlohmann's indentation), and the malformed inputs it must refuse. */
#include <cstdio>
#include <string>

#include "../framework/onnx_plugin/rope_attr_json.h"

static int failures = 0;
static int checks = 0;
#define EXPECT(...)                                                      \
    do {                                                                 \
        ++checks;                                                        \
        if (!(__VA_ARGS__)) {                                            \
            std::printf("FAILED line %d: %s\n", __LINE__, #__VA_ARGS__); \
            ++failures;                                                  \
        }                                                                \
    } while (0)

static bool Read(const char *text, RopeOnnxAttrs &a)
{
    a = RopeOnnxAttrs{};
    std::string why;
    return RopeAttrJson(text).Parse(a, why);
}

int main()
{
    RopeOnnxAttrs a;
    /* GE's dump: indented, "type" as an enum value, both ints present */
    EXPECT(Read("{\n    \"attribute\": [\n        {\n            \"i\": 1,\n            \"name\": \"interleaved\",\n"
                "            \"type\": 2\n        },\n        {\n            \"i\": 64,\n"
                "            \"name\": \"rotary_dim\",\n            \"type\": \"INT\"\n        }\n    ]\n}",
                a));
    EXPECT(a.interleaved == 1 && a.rotaryDim == 64);
    /* an int attribute present without "i" is 0 (GE omits unset fields); absent attributes keep defaults */
    EXPECT(Read("{\"attribute\":[{\"name\":\"interleaved\",\"type\":2}]}", a) && a.interleaved == 0 &&
           a.rotaryDim == 0);
    EXPECT(Read("{}", a) && a.interleaved == 1 && a.rotaryDim == 0);
    EXPECT(Read("{\"attribute\":[]}", a) && a.interleaved == 1);
    /* other keys and values of every JSON kind are skipped */
    EXPECT(Read("{\"name\":\"n\\\"x\\u00e9\",\"input\":[\"a\",\"b\"],\"t\":{\"dims\":[1,2],\"f\":-1.5e-3,\"z\":null},"
                "\"attribute\":[{\"doc_string\":\"x\\ny\",\"ints\":[1,2,3],\"f\":\"1.5\",\"b\":true,"
                "\"name\":\"rotary_dim\",\"i\":-2}]}",
                a));
    EXPECT(a.rotaryDim == -2);  // parsed faithfully; the plugin then refuses a negative rotary_dim
    EXPECT(Read("{\"attribute\":[{\"name\":\"rotary_dim\",\"i\":9223372036854775807}]}", a) &&
           a.rotaryDim == INT64_MAX);
    EXPECT(Read("{\"attribute\":[{\"name\":\"rotary_dim\",\"i\":-9223372036854775808}]}", a) &&
           a.rotaryDim == INT64_MIN);
    /* refused: unknown attribute, non-integer or out-of-range "i", malformed text */
    EXPECT(!Read("{\"attribute\":[{\"name\":\"theta\",\"i\":1}]}", a));
    EXPECT(!Read("{\"attribute\":[{\"name\":\"rotary_dim\",\"i\":1.0}]}", a));
    EXPECT(!Read("{\"attribute\":[{\"name\":\"rotary_dim\",\"i\":\"4\"}]}", a));
    EXPECT(!Read("{\"attribute\":[{\"name\":\"rotary_dim\",\"i\":9223372036854775808}]}", a));
    EXPECT(!Read("{\"attribute\":[{\"i\":1}]}", a));
    EXPECT(!Read("{\"attribute\":{\"name\":\"interleaved\"}}", a));
    EXPECT(!Read("{\"attribute\":[{\"name\":\"interleaved\",\"i\":1}]", a));
    EXPECT(!Read("{\"attribute\":[{\"name\":\"interleaved\",\"i\":1}]} x", a));
    EXPECT(!Read("{\"a\":\"unterminated}", a));
    EXPECT(!Read("{\"a\":\"bad escape \\q\"}", a));
    EXPECT(!Read("{\"a\":01}", a));  // a leading zero is not JSON
    EXPECT(!Read("", a));
    EXPECT(!Read("[1]", a));
    std::string deep = "{\"a\":";
    for (int i = 0; i < 200; ++i) {
        deep += "[";
    }
    EXPECT(!Read(deep.c_str(), a));  // nesting limit, no stack overflow
    std::printf("%d passed, %d failed\n", checks - failures, failures);
    return failures == 0 ? 0 : 1;
}
