/*
 * The ONNX plugin's attribute reader: plain C++ with no dependency, so the plugin needs no JSON library.
 *
 * Why: GE hands an ONNX custom-op plugin the node's repeated `attribute` field as one string attribute
 * named "attribute", the JSON dump of {"attribute": [AttributeProto, ...]} (hicann/ge
 * parser/parser/common/convert/message2operator.cc:135-155, RepeatedMessage2Json then json.dump; int64
 * fields become JSON numbers, pb2json.cc:119, and an unset field is omitted, pb2json.cc:71).  GE parses
 * it with nlohmann/json, but the CANN toolkit does not ship that header to plugin authors (no
 * nlohmann/json.hpp in the public CANN 8.1.RC1 copy github.com/leideng/CANN-8.1.RC1 @551ed27c), and
 * RoPECustomer needs two ints only.  This reader accepts any well-formed JSON, skips every key and
 * value it does not need, and returns false on malformed text, on an attribute it does not know, or on
 * an "i" that is not an integer in int64 range.  Tested with g++ by host_sim/attr_json_selftest.cpp.
 */
#ifndef ROPE_ATTR_JSON_H
#define ROPE_ATTR_JSON_H

#include <cstdint>
#include <cstring>
#include <string>

struct RopeOnnxAttrs {
    int64_t interleaved = 1;  // defaults of the op contract (docs/op-contract.md)
    int64_t rotaryDim = 0;
};

class RopeAttrJson {
public:
    explicit RopeAttrJson(const char *text) : s_(text == nullptr ? "" : text) {}

    /* Reads {"attribute": [{"name": ..., "i": ...}, ...], ...}.  An attribute present without "i" is 0
     * (GE omits an unset or zero int field). */
    bool Parse(RopeOnnxAttrs &out, std::string &why)
    {
        Ws();
        if (!Eat('{')) {
            return Fail(why, "not a JSON object");
        }
        Ws();
        if (Eat('}')) {
            return End(why);
        }
        do {
            std::string key;
            Ws();
            if (!String(key) || (Ws(), !Eat(':'))) {
                return Fail(why, "malformed object key");
            }
            Ws();
            if (key == "attribute") {
                if (!Attributes(out, why)) {
                    return false;
                }
            } else if (!Skip(0)) {
                return Fail(why, "malformed value");
            }
            Ws();
        } while (Eat(','));
        if (!Eat('}')) {
            return Fail(why, "malformed object");
        }
        return End(why);
    }

private:
    static constexpr int MAX_DEPTH = 64;

    bool Attributes(RopeOnnxAttrs &out, std::string &why)
    {
        if (!Eat('[')) {
            return Fail(why, "\"attribute\" is not an array");
        }
        Ws();
        if (Eat(']')) {
            return true;
        }
        do {
            Ws();
            std::string name;
            int64_t value = 0;
            if (!Attribute(name, value, why)) {
                return false;
            }
            if (name == "interleaved") {
                out.interleaved = value;
            } else if (name == "rotary_dim") {
                out.rotaryDim = value;
            } else {
                return Fail(why, "unknown attribute '" + name + "'");
            }
            Ws();
        } while (Eat(','));
        if (!Eat(']')) {
            return Fail(why, "malformed \"attribute\" array");
        }
        return true;
    }

    bool Attribute(std::string &name, int64_t &value, std::string &why)
    {
        if (!Eat('{')) {
            return Fail(why, "an attribute is not an object");
        }
        Ws();
        if (Eat('}')) {
            return Fail(why, "an attribute has no name");
        }
        do {
            std::string key;
            Ws();
            if (!String(key) || (Ws(), !Eat(':'))) {
                return Fail(why, "malformed attribute key");
            }
            Ws();
            if (key == "name") {
                if (!String(name)) {
                    return Fail(why, "attribute name is not a string");
                }
            } else if (key == "i") {
                if (!Integer(value)) {
                    return Fail(why, "attribute \"i\" is not an int64");
                }
            } else if (!Skip(0)) {
                return Fail(why, "malformed attribute value");
            }
            Ws();
        } while (Eat(','));
        if (!Eat('}')) {
            return Fail(why, "malformed attribute object");
        }
        if (name.empty()) {
            return Fail(why, "an attribute has no name");
        }
        return true;
    }

    /* Any JSON value, discarded. */
    bool Skip(int depth)
    {
        if (depth > MAX_DEPTH) {
            return false;
        }
        Ws();
        const char c = s_[i_];
        if (c == '"') {
            std::string ignored;
            return String(ignored);
        }
        if (c == '{' || c == '[') {
            const char close = c == '{' ? '}' : ']';
            ++i_;
            Ws();
            if (Eat(close)) {
                return true;
            }
            do {
                Ws();
                if (c == '{') {
                    std::string key;
                    if (!String(key) || (Ws(), !Eat(':'))) {
                        return false;
                    }
                }
                if (!Skip(depth + 1)) {
                    return false;
                }
                Ws();
            } while (Eat(','));
            return Eat(close);
        }
        if (Word("true") || Word("false") || Word("null")) {
            return true;
        }
        return Number(nullptr);
    }

    bool String(std::string &out)
    {
        out.clear();
        if (!Eat('"')) {
            return false;
        }
        while (s_[i_] != '\0' && s_[i_] != '"') {
            char c = s_[i_++];
            if (static_cast<unsigned char>(c) < 0x20) {
                return false;  // control characters must be escaped
            }
            if (c == '\\') {
                if (s_[i_] == '\0') {
                    return false;
                }
                c = s_[i_++];
                switch (c) {
                    case '"': case '\\': case '/': break;
                    case 'b': c = '\b'; break;
                    case 'f': c = '\f'; break;
                    case 'n': c = '\n'; break;
                    case 'r': c = '\r'; break;
                    case 't': c = '\t'; break;
                    case 'u':
                        for (int k = 0; k < 4; ++k, ++i_) {
                            if (!IsHex(s_[i_])) {
                                return false;
                            }
                        }
                        c = '?';  // names we look for are ASCII; any escaped code point differs from them
                        break;
                    default: return false;
                }
            }
            out.push_back(c);
        }
        return Eat('"');
    }

    bool Integer(int64_t &value)
    {
        const size_t start = i_;
        bool integral = true;
        if (!Number(&integral) || !integral) {
            return false;
        }
        bool negative = s_[start] == '-';
        uint64_t magnitude = 0;
        for (size_t k = start + (negative ? 1 : 0); k < i_; ++k) {
            const uint64_t digit = static_cast<uint64_t>(s_[k] - '0');
            if (magnitude > (UINT64_MAX - digit) / 10) {
                return false;
            }
            magnitude = magnitude * 10 + digit;
        }
        const uint64_t limit = negative ? 9223372036854775808ull : 9223372036854775807ull;
        if (magnitude > limit) {
            return false;
        }
        value = negative ? static_cast<int64_t>(0 - magnitude) : static_cast<int64_t>(magnitude);
        return true;
    }

    /* JSON number grammar; *integral is false when it has a fraction or an exponent. */
    bool Number(bool *integral)
    {
        Eat('-');
        if (s_[i_] == '0') {
            ++i_;
        } else if (IsDigit(s_[i_])) {
            while (IsDigit(s_[i_])) {
                ++i_;
            }
        } else {
            return false;
        }
        bool whole = true;
        if (Eat('.')) {
            whole = false;
            if (!Digits()) {
                return false;
            }
        }
        if (s_[i_] == 'e' || s_[i_] == 'E') {
            ++i_;
            whole = false;
            if (s_[i_] == '+' || s_[i_] == '-') {
                ++i_;
            }
            if (!Digits()) {
                return false;
            }
        }
        if (integral != nullptr) {
            *integral = whole;
        }
        return true;
    }

    bool Digits()
    {
        if (!IsDigit(s_[i_])) {
            return false;
        }
        while (IsDigit(s_[i_])) {
            ++i_;
        }
        return true;
    }

    bool Word(const char *w)
    {
        const size_t n = std::strlen(w);
        if (std::strncmp(s_ + i_, w, n) == 0) {
            i_ += n;
            return true;
        }
        return false;
    }

    bool End(std::string &why)
    {
        Ws();
        return s_[i_] == '\0' ? true : Fail(why, "text after the JSON object");
    }

    bool Fail(std::string &why, const std::string &what)
    {
        why = what + " (at byte " + std::to_string(i_) + ")";
        return false;
    }

    static bool IsDigit(char c) { return c >= '0' && c <= '9'; }
    static bool IsHex(char c) { return IsDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
    void Ws()
    {
        while (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r') {
            ++i_;
        }
    }
    bool Eat(char c)
    {
        if (s_[i_] == c) {
            ++i_;
            return true;
        }
        return false;
    }

    const char *s_;
    size_t i_ = 0;
};

#endif  // ROPE_ATTR_JSON_H
