// The C++ payload: a program made of the standard library's heavy parts,
// all built by init() before the snapshot and used by run() afterwards:
//
//   * an inverted index (std::unordered_map<std::string, std::vector<int>>)
//     over a generated corpus of a few thousand documents;
//   * a graph of std::shared_ptr<Node> with std::weak_ptr back links;
//   * named std::regex objects (ECMAScript, extended, icase), compiled once;
//   * iostreams formatting (std::ostringstream, <iomanip>, classic locale);
//   * an expression interpreter whose errors are C++ exceptions (classes
//     derived from std::runtime_error, std::throw_with_nested).
//
// run() takes one command line ("search w1 w2", "regex NAME subject",
// "path a b", "eval 3*(4+5)/0", "format 3.14159 10 4", "stats",
// "alloc N", ...; see dispatch()).  Every exception, ours or the
// library's, is caught in run() and becomes "error: ..." with its nested
// causes.  Output never depends on addresses or hash-table order.
#include <algorithm>
#include <any>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <exception>
#include <functional>
#include <iomanip>
#include <locale>
#include <map>
#include <memory>
#include <new>
#include <queue>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <variant>
#include <vector>

#include "payload.hpp"

const char* const payload::kName = "cxx";

namespace {

// ---- errors ---------------------------------------------------------------

// Our exceptions name their kind in messages ("MathError: ...").
class PayloadError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
  virtual const char* kind() const noexcept = 0;
};
#define DEFINE_ERROR(Name)                                       \
  class Name : public PayloadError {                             \
   public:                                                       \
    using PayloadError::PayloadError;                            \
    const char* kind() const noexcept override { return #Name; } \
  };
DEFINE_ERROR(UsageError)
DEFINE_ERROR(ParseError)
DEFINE_ERROR(MathError)
DEFINE_ERROR(NameError)
DEFINE_ERROR(EvalError)
DEFINE_ERROR(FormatError)
#undef DEFINE_ERROR

// A fixed name for the exception types that can reach run() (typeid names
// would do too, but these read better and never change with the ABI).
std::string kind_of(const std::exception& e) {
  if (auto* p = dynamic_cast<const PayloadError*>(&e)) return p->kind();
  if (dynamic_cast<const std::regex_error*>(&e)) return "std::regex_error";
  if (dynamic_cast<const std::ios_base::failure*>(&e)) return "std::ios_base::failure";
  if (dynamic_cast<const std::out_of_range*>(&e)) return "std::out_of_range";
  if (dynamic_cast<const std::invalid_argument*>(&e)) return "std::invalid_argument";
  if (dynamic_cast<const std::logic_error*>(&e)) return "std::logic_error";
  if (dynamic_cast<const std::runtime_error*>(&e)) return "std::runtime_error";
  if (dynamic_cast<const std::bad_weak_ptr*>(&e)) return "std::bad_weak_ptr";
  if (dynamic_cast<const std::bad_any_cast*>(&e)) return "std::bad_any_cast";
  if (dynamic_cast<const std::bad_variant_access*>(&e)) return "std::bad_variant_access";
  if (dynamic_cast<const std::bad_function_call*>(&e)) return "std::bad_function_call";
  if (dynamic_cast<const std::bad_alloc*>(&e)) return "std::bad_alloc";
  return "std::exception";
}

// "Kind: message: Kind: cause: ..." down the std::nested_exception chain.
void describe(const std::exception& e, std::string& out) {
  out += kind_of(e) + ": " + e.what();
  try {
    std::rethrow_if_nested(e);
  } catch (const std::exception& cause) {
    out += ": ";
    describe(cause, out);
  } catch (...) {
    out += ": (a non-standard exception)";
  }
}

// ---- formatting -------------------------------------------------------------

// A stream that formats the same way in every process (no global locale).
std::ostringstream classic_stream() {
  std::ostringstream os;
  os.imbue(std::locale::classic());
  return os;
}

std::string number_text(double v) {
  std::ostringstream os = classic_stream();
  os << std::setprecision(12) << v;
  return os.str();
}

std::vector<std::string> split_words(std::string_view text) {
  std::istringstream is{std::string(text)};
  std::vector<std::string> words;
  for (std::string w; is >> w;) words.push_back(w);
  return words;
}

// ---- deterministic generator -------------------------------------------------

struct Lcg {
  uint64_t state;
  uint32_t next() {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<uint32_t>(state >> 33);
  }
  double unit() { return next() / 2147483648.0; }  // [0, 1)
};

// ---- corpus and inverted index ---------------------------------------------

constexpr int kVocabulary = 900;
constexpr int kDocuments = 3000;

std::vector<std::string> vocabulary;                         // word id -> word
std::unordered_map<std::string, int> word_ids;               // word -> id
std::vector<std::vector<int>> documents;                     // doc -> word ids
std::unordered_map<std::string, std::vector<int>> postings;  // word -> sorted doc ids
std::unordered_map<std::string, int64_t> occurrences;        // word -> total count

void build_corpus() {
  static const char* const syllables[] = {"ka", "lo", "mi", "ne", "ru",  "sa",  "ti", "vo",
                                          "ze", "pa", "do", "fu", "gri", "sho", "an", "el"};
  Lcg rng{42};
  std::unordered_set<std::string> seen;
  while (static_cast<int>(vocabulary.size()) < kVocabulary) {
    std::string w;
    const int n = 2 + static_cast<int>(rng.next() % 2);
    for (int i = 0; i < n; ++i) w += syllables[rng.next() % 16];
    if (seen.insert(w).second) {
      word_ids.emplace(w, static_cast<int>(vocabulary.size()));
      vocabulary.push_back(w);
    }
  }
  documents.resize(kDocuments);
  for (int d = 0; d < kDocuments; ++d) {
    const int length = 15 + static_cast<int>(rng.next() % 40);
    for (int i = 0; i < length; ++i) {
      // Squaring a uniform number skews towards low ids: a few common words.
      const double u = rng.unit();
      const int id = std::min(kVocabulary - 1, static_cast<int>(u * u * kVocabulary));
      documents[d].push_back(id);
      const std::string& w = vocabulary[id];
      ++occurrences[w];
      std::vector<int>& list = postings[w];
      if (list.empty() || list.back() != d) list.push_back(d);
    }
  }
}

// Doc ids containing every word (intersection of sorted postings).
std::vector<int> docs_with_all(const std::vector<std::string>& words) {
  std::vector<int> result;
  for (size_t i = 0; i < words.size(); ++i) {
    auto it = postings.find(words[i]);
    if (it == postings.end()) return {};
    if (i == 0) {
      result = it->second;
      continue;
    }
    std::vector<int> both;
    std::set_intersection(result.begin(), result.end(), it->second.begin(), it->second.end(), std::back_inserter(both));
    result.swap(both);
  }
  return result;
}

// ---- graph of shared_ptr nodes -----------------------------------------------

struct Node {
  std::string name;
  std::vector<std::shared_ptr<Node>> out;  // owning edges (cycles: never freed, by design)
  std::vector<std::weak_ptr<Node>> in;     // back links
};
std::map<std::string, std::shared_ptr<Node>> nodes;  // ordered: listing is sorted
int64_t edge_count = 0;

void link(const std::shared_ptr<Node>& a, const std::shared_ptr<Node>& b) {
  a->out.push_back(b);
  b->in.push_back(a);
  ++edge_count;
}

void build_graph() {
  constexpr int kNodes = 300;
  std::vector<std::shared_ptr<Node>> v;
  for (int i = 0; i < kNodes; ++i) v.push_back(std::make_shared<Node>(Node{"n" + std::to_string(i), {}, {}}));
  for (int i = 0; i < kNodes; ++i) {
    link(v[i], v[(i * 7 + 1) % kNodes]);
    if (i % 3 == 0) link(v[i], v[(i * 13 + 5) % kNodes]);
  }
  // An island nothing else reaches: "path n0 island0" has no answer.
  for (int i = 0; i < 4; ++i) v.push_back(std::make_shared<Node>(Node{"island" + std::to_string(i), {}, {}}));
  for (int i = 0; i < 4; ++i) link(v[kNodes + i], v[kNodes + (i + 1) % 4]);
  for (auto& n : v) nodes.emplace(n->name, n);
}

std::shared_ptr<Node> node(const std::string& name) {
  auto it = nodes.find(name);
  if (it == nodes.end()) throw NameError("no node '" + name + "'");
  return it->second;
}

// ---- regexes ----------------------------------------------------------------

struct NamedRegex {
  std::string source;
  std::string flags;  // for listing
  std::regex re;
};
std::map<std::string, NamedRegex> regexes;
int regexes_compiled_at_init = 0;
int regexes_compiled_later = 0;  // by "match": compiled inside run()

void add_regex(const std::string& name, const std::string& source, std::regex::flag_type flags, const char* text) {
  regexes.emplace(name, NamedRegex{source, text, std::regex(source, flags)});
  ++regexes_compiled_at_init;
}

void build_regexes() {
  using R = std::regex;
  add_regex("email", R"(([\w.+-]+)@([\w-]+(\.[\w-]+)+))", R::ECMAScript, "ECMAScript");
  add_regex("date", R"((\d{4})-(\d{2})-(\d{2}))", R::ECMAScript, "ECMAScript");
  add_regex("ipv4", R"(\b((25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(25[0-5]|2[0-4]\d|1?\d?\d)\b)", R::ECMAScript, "ECMAScript");
  add_regex("hex", "0[xX][0-9a-fA-F]+", R::extended, "extended");
  add_regex("ident", "[A-Za-z_][A-Za-z0-9_]*", R::extended, "extended");
  add_regex("float", "[-+]?[0-9]+\\.[0-9]+([eE][-+]?[0-9]+)?", R::extended, "extended");
  add_regex("hello", "hello|bonjour|hallo", R::ECMAScript | R::icase, "ECMAScript|icase");
  add_regex("shouty", "[a-z]+!", R::extended | R::icase, "extended|icase");
  add_regex("url", R"((https?)://([^/\s:]+)(:\d+)?(/\S*)?)", R::ECMAScript | R::icase, "ECMAScript|icase");
  add_regex("repeat", R"(\b(\w+)\s+\1\b)", R::ECMAScript | R::icase, "ECMAScript|icase");
  add_regex("kaword", "\\b(ka|lo)[a-z]*\\b", R::ECMAScript | R::optimize, "ECMAScript|optimize");
  add_regex("phone", R"(\+?(\d{1,3})[ -]?\(?(\d{3})\)?[ -]?(\d{3})[ -]?(\d{4}))", R::ECMAScript, "ECMAScript");
}

const NamedRegex& named_regex(const std::string& name) {
  auto it = regexes.find(name);
  if (it == regexes.end()) throw NameError("no regex named '" + name + "'");
  return it->second;
}

std::string describe_match(const std::smatch& m) {
  std::ostringstream os = classic_stream();
  os << "match at " << m.position(0) << ": \"" << m.str(0) << "\"";
  for (size_t i = 1; i < m.size(); ++i) os << " [" << i << "]=" << (m[i].matched ? "\"" + m.str(i) + "\"" : "-");
  return os.str();
}

// ---- expression interpreter ---------------------------------------------------

std::unordered_map<std::string, double> variables;  // survives between commands
const std::map<std::string, int> kFunctions = {{"sqrt", 1}, {"abs", 1}, {"log", 1}, {"fact", 1},
                                               {"min", 2},  {"max", 2}, {"pow", 2}};

// Recursive descent: expr := term (('+'|'-') term)*; term := unary
// (('*'|'/'|'%') unary)*; unary := '-' unary | power; power := primary
// ('^' unary)?; primary := number | name | name '(' args ')' | '(' expr ')'.
// Errors are thrown where they happen, deep in the recursion; calls wrap
// them with throw_with_nested on the way out.
class Parser {
 public:
  explicit Parser(std::string_view src) : src_(src) {}

  double statement() {
    skip();
    // "name = expr" assigns.
    size_t save = pos_;
    if (std::isalpha(static_cast<unsigned char>(peek())) || peek() == '_') {
      std::string name = identifier();
      skip();
      if (peek() == '=') {
        ++pos_;
        double v = expr();
        end();
        variables[name] = v;
        return v;
      }
    }
    pos_ = save;
    double v = expr();
    end();
    return v;
  }

 private:
  static constexpr int kMaxDepth = 200;

  char peek() const { return pos_ < src_.size() ? src_[pos_] : '\0'; }
  void skip() {
    while (pos_ < src_.size() && std::isspace(static_cast<unsigned char>(src_[pos_]))) ++pos_;
  }
  std::string column() const { return "column " + std::to_string(pos_ + 1); }
  void end() {
    skip();
    if (pos_ != src_.size()) throw ParseError("unexpected '" + std::string(1, peek()) + "' at " + column());
  }
  std::string identifier() {
    size_t start = pos_;
    while (std::isalnum(static_cast<unsigned char>(peek())) || peek() == '_') ++pos_;
    return std::string(src_.substr(start, pos_ - start));
  }

  double expr() {
    if (++depth_ > kMaxDepth) throw ParseError("expression nested deeper than " + std::to_string(kMaxDepth));
    double v = term();
    for (skip(); peek() == '+' || peek() == '-'; skip()) {
      char op = src_[pos_++];
      double r = term();
      v = op == '+' ? v + r : v - r;
    }
    --depth_;
    return v;
  }
  double term() {
    double v = unary();
    for (skip(); peek() == '*' || peek() == '/' || peek() == '%'; skip()) {
      const std::string at = column();  // the operator's
      char op = src_[pos_++];
      double r = unary();
      if (op == '*') {
        v *= r;
      } else if (r == 0) {
        throw MathError(std::string(op == '/' ? "division" : "modulo") + " by zero at " + at);
      } else {
        v = op == '/' ? v / r : std::fmod(v, r);
      }
    }
    return v;
  }
  double unary() {
    skip();
    if (peek() == '-') {
      ++pos_;
      return -unary();
    }
    double base = primary();
    skip();
    if (peek() == '^') {
      ++pos_;
      return std::pow(base, unary());
    }
    return base;
  }
  double primary() {
    skip();
    const char c = peek();
    if (c == '(') {
      ++pos_;
      double v = expr();
      skip();
      if (peek() != ')') throw ParseError("expected ')' at " + column());
      ++pos_;
      return v;
    }
    if (std::isdigit(static_cast<unsigned char>(c)) || c == '.') {
      double v = 0;
      auto [p, ec] = std::from_chars(src_.data() + pos_, src_.data() + src_.size(), v);
      if (ec != std::errc()) throw ParseError("bad number at " + column());
      pos_ = static_cast<size_t>(p - src_.data());
      return v;
    }
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      const std::string at = column();
      std::string name = identifier();
      skip();
      if (peek() == '(') return call(name, at);
      auto it = variables.find(name);
      if (it == variables.end()) throw NameError("unknown variable '" + name + "' at " + at);
      return it->second;
    }
    if (c == '\0') throw ParseError("unexpected end of expression");
    throw ParseError("unexpected '" + std::string(1, c) + "' at " + column());
  }

  double call(const std::string& name, const std::string& at) {
    ++pos_;  // '('
    std::vector<double> args;
    try {
      skip();
      if (peek() != ')') {
        for (;;) {
          args.push_back(expr());
          skip();
          if (peek() == ',') {
            ++pos_;
            continue;
          }
          break;
        }
      }
      if (peek() != ')') throw ParseError("expected ')' or ',' at " + column());
      ++pos_;
      return apply(name, args);
    } catch (const ParseError&) {
      throw;  // a syntax error is about the text, not the call
    } catch (...) {
      std::throw_with_nested(EvalError("in " + name + "() called at " + at));
    }
  }

  static double apply(const std::string& name, const std::vector<double>& a) {
    auto f = kFunctions.find(name);
    if (f == kFunctions.end()) throw NameError("unknown function '" + name + "'");
    if (static_cast<int>(a.size()) != f->second)
      throw NameError(name + " takes " + std::to_string(f->second) + " argument(s), got " + std::to_string(a.size()));
    if (name == "sqrt") {
      if (a[0] < 0) throw MathError("square root of negative number " + number_text(a[0]));
      return std::sqrt(a[0]);
    }
    if (name == "abs") return std::fabs(a[0]);
    if (name == "log") {
      if (a[0] <= 0) throw MathError("logarithm of non-positive number " + number_text(a[0]));
      return std::log(a[0]);
    }
    if (name == "fact") {
      if (a[0] < 0 || a[0] != std::floor(a[0]) || a[0] > 170)
        throw MathError("factorial of " + number_text(a[0]) + " (needs an integer 0..170)");
      double r = 1;
      for (int i = 2; i <= static_cast<int>(a[0]); ++i) r *= i;
      return r;
    }
    if (name == "min") return std::min(a[0], a[1]);
    if (name == "max") return std::max(a[0], a[1]);
    return std::pow(a[0], a[1]);
  }

  std::string_view src_;
  size_t pos_ = 0;
  int depth_ = 0;
};

std::string evaluate(std::string_view source) {
  try {
    return number_text(Parser(source).statement());
  } catch (...) {
    std::throw_with_nested(EvalError("while evaluating '" + std::string(source) + "'"));
  }
}

// ---- commands -----------------------------------------------------------------

std::string rest_after(std::string_view line, size_t words) {
  size_t pos = 0;
  for (size_t i = 0; i < words; ++i) {
    pos = line.find_first_not_of(" \t", pos);
    if (pos == std::string_view::npos) return "";
    pos = line.find_first_of(" \t", pos);
    if (pos == std::string_view::npos) return "";
  }
  pos = line.find_first_not_of(" \t", pos);
  return pos == std::string_view::npos ? "" : std::string(line.substr(pos));
}

void need(const std::vector<std::string>& w, size_t n, const char* usage) {
  if (w.size() < n) throw UsageError(std::string("usage: ") + usage);
}

std::string cmd_search(const std::vector<std::string>& w) {
  need(w, 2, "search WORD...");
  const std::vector<int> docs = docs_with_all({w.begin() + 1, w.end()});
  std::ostringstream os = classic_stream();
  os << docs.size() << " docs";
  for (size_t i = 0; i < docs.size() && i < 12; ++i) os << (i ? " " : ": ") << docs[i];
  if (docs.size() > 12) os << " ...";
  return os.str();
}

// Documents with all words ranked by tf-idf, best first (ties: lower id).
std::string cmd_rank(const std::vector<std::string>& w) {
  need(w, 2, "rank WORD...");
  const std::vector<std::string> words(w.begin() + 1, w.end());
  std::vector<std::pair<double, int>> scored;
  for (int d : docs_with_all(words)) {
    double score = 0;
    for (const auto& word : words) {
      const int id = word_ids.at(word);
      const auto tf = std::count(documents[d].begin(), documents[d].end(), id);
      score += static_cast<double>(tf) / documents[d].size() *
               std::log(static_cast<double>(kDocuments) / postings.at(word).size());
    }
    scored.emplace_back(-score, d);
  }
  std::sort(scored.begin(), scored.end());
  std::ostringstream os = classic_stream();
  os << std::fixed << std::setprecision(5);
  for (size_t i = 0; i < scored.size() && i < 5; ++i)
    os << (i ? "\n" : "") << "doc " << scored[i].second << " " << -scored[i].first;
  return scored.empty() ? "no documents" : os.str();
}

std::string cmd_doc(const std::vector<std::string>& w) {
  need(w, 2, "doc ID");
  const size_t id = std::stoul(w[1]);  // std::invalid_argument / std::out_of_range escape to run()
  const std::vector<int>& doc = documents.at(id);
  std::string s;
  for (int word : doc) s += (s.empty() ? "" : " ") + vocabulary[word];
  return s;
}

std::string cmd_top(const std::vector<std::string>& w) {
  const size_t k = w.size() > 1 ? std::stoul(w[1]) : 10;
  std::vector<std::pair<int64_t, std::string>> counts;
  for (const auto& [word, n] : occurrences) counts.emplace_back(-n, word);
  std::sort(counts.begin(), counts.end());
  std::ostringstream os = classic_stream();
  os << std::left << std::setw(10) << "word" << std::right << std::setw(8) << "count" << std::setw(7) << "docs";
  for (size_t i = 0; i < counts.size() && i < k; ++i)
    os << "\n"
       << std::left << std::setw(10) << counts[i].second << std::right << std::setw(8) << -counts[i].first
       << std::setw(7) << postings.at(counts[i].second).size();
  return os.str();
}

std::string cmd_regex(std::string_view line, const std::vector<std::string>& w) {
  need(w, 2, "regex NAME SUBJECT");
  const NamedRegex& r = named_regex(w[1]);
  const std::string subject = rest_after(line, 2);
  std::smatch m;
  if (!std::regex_search(subject, m, r.re)) return "no match";
  return describe_match(m);
}

std::string cmd_regex_all(std::string_view line, const std::vector<std::string>& w) {
  need(w, 2, "regex-all NAME SUBJECT");
  const NamedRegex& r = named_regex(w[1]);
  const std::string subject = rest_after(line, 2);
  std::ostringstream os = classic_stream();
  int n = 0;
  for (std::sregex_iterator it(subject.begin(), subject.end(), r.re), e; it != e; ++it, ++n)
    os << (n ? " | " : "") << it->str();
  return std::to_string(n) + " matches" + (n ? ": " + os.str() : "");
}

// "replace NAME FORMAT SUBJECT": std::regex_replace with $n references.
std::string cmd_replace(std::string_view line, const std::vector<std::string>& w) {
  need(w, 3, "replace NAME FORMAT SUBJECT");
  return std::regex_replace(rest_after(line, 3), named_regex(w[1]).re, w[2]);
}

// "match PATTERN SUBJECT": a regex compiled now, inside the call.
std::string cmd_match(std::string_view line, const std::vector<std::string>& w) {
  need(w, 2, "match PATTERN SUBJECT");
  std::regex re;
  try {
    re.assign(w[1]);
  } catch (const std::regex_error&) {
    std::throw_with_nested(UsageError("bad pattern '" + w[1] + "'"));
  }
  ++regexes_compiled_later;
  const std::string subject = rest_after(line, 2);
  std::smatch m;
  return std::regex_search(subject, m, re) ? describe_match(m) : "no match";
}

std::string cmd_regexes() {
  std::ostringstream os = classic_stream();
  os << "compiled at init: " << regexes_compiled_at_init << ", compiled since: " << regexes_compiled_later;
  for (const auto& [name, r] : regexes)
    os << "\n"
       << std::left << std::setw(8) << name << " " << std::setw(20) << r.flags << " marks=" << r.re.mark_count();
  return os.str();
}

std::string cmd_path(const std::vector<std::string>& w) {
  need(w, 3, "path FROM TO");
  const std::shared_ptr<Node> from = node(w[1]), to = node(w[2]);
  // BFS over owning edges; predecessors kept as weak_ptr like the graph's back links.
  std::map<const Node*, std::weak_ptr<Node>> previous;
  std::queue<std::shared_ptr<Node>> queue;
  previous[from.get()] = {};
  queue.push(from);
  while (!queue.empty() && !previous.count(to.get())) {
    std::shared_ptr<Node> n = queue.front();
    queue.pop();
    for (const auto& next : n->out)
      if (previous.emplace(next.get(), n).second) queue.push(next);
  }
  if (!previous.count(to.get())) return "no path from " + w[1] + " to " + w[2];
  std::vector<std::string> path;
  for (std::shared_ptr<Node> n = to; n; n = previous[n.get()].lock()) path.push_back(n->name);
  std::reverse(path.begin(), path.end());
  std::string s = std::to_string(path.size() - 1) + " hops:";
  for (const auto& p : path) s += " " + p;
  return s;
}

std::string cmd_node(const std::vector<std::string>& w) {
  need(w, 2, "node NAME");
  const std::shared_ptr<Node> n = node(w[1]);
  std::vector<std::string> out, in;
  for (const auto& o : n->out) out.push_back(o->name);
  for (const auto& weak : n->in) in.push_back(weak.lock()->name);  // every node lives: lock() never fails
  std::sort(out.begin(), out.end());
  std::sort(in.begin(), in.end());
  std::ostringstream os = classic_stream();
  // use_count: the map's reference, ours (n), and one per incoming edge.
  os << n->name << " use_count=" << n.use_count() << " out:";
  for (const auto& s : out) os << " " << s;
  os << " in:";
  for (const auto& s : in) os << " " << s;
  return os.str();
}

std::string cmd_eval(std::string_view line) {
  const std::string source = rest_after(line, 1);
  if (source.empty()) throw UsageError("usage: eval EXPRESSION");
  return evaluate(source);
}

std::string cmd_vars() {
  std::vector<std::pair<std::string, double>> v(variables.begin(), variables.end());
  std::sort(v.begin(), v.end());
  std::string s = std::to_string(v.size()) + " variables";
  for (const auto& [name, value] : v) s += "\n" + name + " = " + number_text(value);
  return s;
}

// "format VALUE WIDTH PRECISION": one value through many manipulators.
// Arguments are read with a stream that throws (std::ios_base::failure).
std::string cmd_format(const std::vector<std::string>& w) {
  need(w, 4, "format VALUE WIDTH PRECISION");
  double value = 0;
  int width = 0, precision = 0;
  auto read = [](const std::string& text, auto& into, const char* what) {
    std::istringstream is(text);
    is.imbue(std::locale::classic());
    is.exceptions(std::ios::failbit | std::ios::badbit);
    try {
      is >> into;
    } catch (const std::ios_base::failure&) {
      std::throw_with_nested(FormatError(std::string("bad ") + what + " '" + text + "'"));
    }
  };
  read(w[1], value, "value");
  read(w[2], width, "width");
  read(w[3], precision, "precision");
  if (width < 0 || width > 60 || precision < 0 || precision > 30)
    throw FormatError("width must be 0..60 and precision 0..30");
  std::ostringstream os = classic_stream();
  os << "fixed   [" << std::fixed << std::setprecision(precision) << std::setw(width) << value << "]\n";
  os << "sci     [" << std::scientific << std::setw(width) << value << "]\n";
  os << "left    [" << std::fixed << std::left << std::setfill('*') << std::setw(width) << value << "]\n";
  os << std::right << std::setfill(' ');
  os << "general [" << std::defaultfloat << std::setw(width) << value << "]\n";
  os << "hexfloat[" << std::hexfloat << value << "]\n" << std::defaultfloat;
  os << "showpos [" << std::showpos << std::internal << std::setw(width) << value << "]\n" << std::noshowpos;
  const long long whole = static_cast<long long>(value);
  os << "integer [" << std::setw(width) << whole << "] hex " << std::showbase << std::hex << whole << " oct "
     << std::oct << whole << std::dec << std::noshowbase;
  return os.str();
}

// "wc TEXT": word counts of the text, most frequent first.
std::string cmd_wc(std::string_view line) {
  std::unordered_map<std::string, int> counts;
  for (const auto& word : split_words(rest_after(line, 1))) ++counts[word];
  std::vector<std::pair<int, std::string>> v;
  for (const auto& [word, n] : counts) v.emplace_back(-n, word);
  std::sort(v.begin(), v.end());
  std::string s;
  for (const auto& [n, word] : v) s += (s.empty() ? "" : " ") + word + "=" + std::to_string(-n);
  return s.empty() ? "(no words)" : s;
}

struct Tracked {
  static inline int64_t live = 0;
  int64_t value;
  explicit Tracked(int64_t v) : value(v) { ++live; }
  ~Tracked() { --live; }
};

// "alloc N": makes and drops N shared objects and reports use_count facts.
std::string cmd_alloc(const std::vector<std::string>& w) {
  need(w, 2, "alloc N");
  const long long n = std::stoll(w[1]);
  if (n < 1 || n > 2000000) throw UsageError("alloc: N must be 1..2000000");
  std::ostringstream os = classic_stream();
  std::vector<std::shared_ptr<Tracked>> owners;
  owners.reserve(n);
  for (long long i = 0; i < n; ++i)
    owners.push_back(i % 2 ? std::make_shared<Tracked>(i) : std::shared_ptr<Tracked>(new Tracked(i)));
  os << "live after make: " << Tracked::live << "\n";
  {
    std::vector<std::shared_ptr<Tracked>> copies(owners.begin(), owners.end());
    std::shared_ptr<int64_t> alias(owners[0], &owners[0]->value);  // aliasing constructor
    os << "use_count with copies: " << owners.back().use_count() << ", of the aliased: " << owners[0].use_count()
       << "\n";
  }
  std::weak_ptr<Tracked> middle = owners[n / 2];
  int64_t sum = 0;
  for (const auto& p : owners) sum += p->value;
  os << "use_count after drop: " << owners.back().use_count() << ", weak use_count: " << middle.use_count() << "\n";
  owners.clear();
  os << "weak expired after clear: " << std::boolalpha << middle.expired() << ", live after clear: " << Tracked::live
     << "\nsum: " << sum;
  return os.str();
}

// "throw KIND": exceptions thrown by the standard library itself, caught in run().
std::string cmd_throw(const std::vector<std::string>& w) {
  need(w, 2, "throw KIND");
  const std::string& kind = w[1];
  if (kind == "out_of_range") return std::to_string(std::vector<int>{1, 2, 3}.at(5));
  if (kind == "bad_weak_ptr") {
    std::weak_ptr<int> gone;
    { gone = std::make_shared<int>(1); }
    return std::to_string(*std::shared_ptr<int>(gone));
  }
  if (kind == "bad_any_cast") return std::any_cast<std::string>(std::any(7));
  if (kind == "bad_variant_access") return std::get<std::string>(std::variant<int, std::string>(1));
  if (kind == "bad_function_call") return std::function<std::string()>()();
  if (kind == "regex_error") return std::to_string(std::regex("(unclosed").mark_count());
  if (kind == "invalid_argument") return std::to_string(std::stoi("twelve"));
  if (kind == "bad_alloc") return std::string(std::vector<char>(static_cast<size_t>(1) << 62).size(), 'x');
  if (kind == "int") throw 42;
  if (kind == "nested") {
    try {
      try {
        throw MathError("innermost");
      } catch (...) {
        std::throw_with_nested(std::runtime_error("middle"));
      }
    } catch (...) {
      std::throw_with_nested(EvalError("outer"));
    }
  }
  throw UsageError("throw: unknown kind '" + kind + "'");
}

std::string cmd_stats() {
  int64_t total_postings = 0, total_words = 0;
  for (const auto& [word, docs] : postings) total_postings += static_cast<int64_t>(docs.size());
  for (const auto& doc : documents) total_words += static_cast<int64_t>(doc.size());
  std::ostringstream os = classic_stream();
  os << "documents " << documents.size() << "\nvocabulary " << vocabulary.size() << "\nindexed words "
     << postings.size() << "\npostings " << total_postings << "\nwords " << total_words << "\nnodes " << nodes.size()
     << "\nedges " << edge_count << "\nregexes " << regexes.size() << "\nvariables " << variables.size()
     << "\nmean document length " << std::fixed << std::setprecision(3)
     << static_cast<double>(total_words) / documents.size();
  return os.str();
}

std::string dispatch(std::string_view line) {
  const std::vector<std::string> w = split_words(line);
  if (w.empty()) throw UsageError("empty command");
  const std::string& c = w[0];
  if (c == "search") return cmd_search(w);
  if (c == "rank") return cmd_rank(w);
  if (c == "doc") return cmd_doc(w);
  if (c == "top") return cmd_top(w);
  if (c == "regex") return cmd_regex(line, w);
  if (c == "regex-all") return cmd_regex_all(line, w);
  if (c == "replace") return cmd_replace(line, w);
  if (c == "match") return cmd_match(line, w);
  if (c == "regexes") return cmd_regexes();
  if (c == "path") return cmd_path(w);
  if (c == "node") return cmd_node(w);
  if (c == "eval") return cmd_eval(line);
  if (c == "vars") return cmd_vars();
  if (c == "format") return cmd_format(w);
  if (c == "wc") return cmd_wc(line);
  if (c == "alloc") return cmd_alloc(w);
  if (c == "throw") return cmd_throw(w);
  if (c == "stats") return cmd_stats();
  throw UsageError("unknown command '" + c + "'");
}

}  // namespace

void payload::init() {
  build_corpus();
  build_graph();
  build_regexes();
  variables["pi"] = 3.14159265358979;
  variables["e"] = 2.71828182845905;
}

std::string payload::run(std::string_view input) {
  try {
    return dispatch(input);
  } catch (const std::exception& e) {
    std::string s = "error: ";
    describe(e, s);
    return s;
  } catch (int code) {
    return "error: int " + std::to_string(code);
  } catch (...) {
    return "error: unknown exception";
  }
}
