#include "rules/meta_expression.h"

#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <set>

namespace mailgate::rules {
namespace {

bool isIdentStart(char c) { return std::isalpha(static_cast<unsigned char>(c)) != 0 || c == '_'; }
bool isIdentChar(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == ':'; }
bool truthy(double value) { return value != 0; }

// Functions whose argument is read as raw text up to ')' (a class name or a rule-name glob).
bool isFunction(std::string_view name) {
  return name == "plugin" || name == "can" || name == "has" || name == "rules_matching";
}

}  // namespace

// Recursive descent, one level per Perl precedence level (perlop), lowest first.
class MetaParser {
 public:
  MetaParser(std::string_view text, MetaExpression& out) : text_(text), out_(out) {}

  std::expected<void, std::string> run() {
    auto root = ternary(0);
    if (!root) return std::unexpected(root.error());
    skipSpace();
    if (at_ < text_.size()) return std::unexpected("unexpected '" + std::string(text_.substr(at_, 12)) + "'");
    out_.root_ = *root;
    return {};
  }

 private:
  using Result = std::expected<int, std::string>;
  using Op = MetaExpression::Op;

  void skipSpace() {
    while (at_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[at_]))) ++at_;
  }
  bool accept(std::string_view token) {
    skipSpace();
    if (text_.substr(at_, token.size()) != token) return false;
    // "!" must not take the "!" of "!=", "<" not the "<" of "<=", and so on.
    if ((token == "!" || token == "<" || token == ">" || token == "=") && text_.substr(at_ + 1, 1) == "=") return false;
    at_ += token.size();
    return true;
  }
  int add(MetaExpression::Node node) {
    out_.nodes_.push_back(std::move(node));
    return static_cast<int>(out_.nodes_.size() - 1);
  }
  int binary(Op op, int a, int b) { return add({op, 0, {}, {}, a, b, -1, {}, {}}); }

  Result ternary(int depth) {
    if (depth > MetaExpression::max_depth) return std::unexpected(std::string("expression nested too deeply"));
    auto condition = orExpr(depth);
    if (!condition || !accept("?")) return condition;
    auto yes = ternary(depth + 1);
    if (!yes) return yes;
    if (!accept(":")) return std::unexpected(std::string("'?' without ':'"));
    auto no = ternary(depth + 1);
    if (!no) return no;
    return add({Op::Ternary, 0, {}, {}, *condition, *yes, *no, {}, {}});
  }

  template <class Next>
  Result leftAssociative(int depth, Next next, std::initializer_list<std::pair<std::string_view, Op>> ops) {
    auto left = (this->*next)(depth);
    while (left) {
      bool matched = false;
      for (const auto& [token, op] : ops) {
        if (accept(token)) {
          auto right = (this->*next)(depth);
          if (!right) return right;
          left = binary(op, *left, *right);
          matched = true;
          break;
        }
      }
      if (!matched) break;
    }
    return left;
  }

  Result orExpr(int depth) { return leftAssociative(depth, &MetaParser::andExpr, {{"||", Op::Or}}); }
  Result andExpr(int depth) { return leftAssociative(depth, &MetaParser::xorExpr, {{"&&", Op::And}}); }
  Result xorExpr(int depth) { return leftAssociative(depth, &MetaParser::equality, {{"^", Op::Xor}}); }
  Result equality(int depth) {
    return leftAssociative(depth, &MetaParser::relational, {{"==", Op::Eq}, {"!=", Op::Ne}});
  }
  Result relational(int depth) {
    return leftAssociative(depth, &MetaParser::additive, {{"<=", Op::Le}, {">=", Op::Ge}, {"<", Op::Lt}, {">", Op::Gt}});
  }
  Result additive(int depth) {
    return leftAssociative(depth, &MetaParser::multiplicative, {{"+", Op::Add}, {"-", Op::Sub}});
  }
  Result multiplicative(int depth) {
    return leftAssociative(depth, &MetaParser::unary, {{"*", Op::Mul}, {"/", Op::Div}});
  }

  Result unary(int depth) {
    if (depth > MetaExpression::max_depth) return std::unexpected(std::string("expression nested too deeply"));
    if (accept("!")) {
      auto operand = unary(depth + 1);
      if (!operand) return operand;
      return add({Op::Not, 0, {}, {}, *operand, -1, -1, {}, {}});
    }
    if (accept("-")) {
      auto operand = unary(depth + 1);
      if (!operand) return operand;
      return add({Op::Negate, 0, {}, {}, *operand, -1, -1, {}, {}});
    }
    if (accept("+")) return unary(depth + 1);
    return primary(depth);
  }

  Result primary(int depth) {
    skipSpace();
    if (at_ >= text_.size()) return std::unexpected(std::string("unexpected end of expression"));
    if (accept("(")) {
      auto inner = ternary(depth + 1);
      if (!inner) return inner;
      if (!accept(")")) return std::unexpected(std::string("missing ')'"));
      return inner;
    }
    char c = text_[at_];
    if (std::isdigit(static_cast<unsigned char>(c)) || c == '.') {
      std::size_t start = at_;
      while (at_ < text_.size() && (std::isdigit(static_cast<unsigned char>(text_[at_])) || text_[at_] == '.')) ++at_;
      std::string number(text_.substr(start, at_ - start));
      char* end = nullptr;
      double value = std::strtod(number.c_str(), &end);
      if (end != number.c_str() + number.size() || (at_ < text_.size() && isIdentChar(text_[at_]))) {
        return std::unexpected("invalid token '" + number + "'");
      }
      return add({Op::Number, value, {}, {}, -1, -1, -1, {}, {}});
    }
    if (isIdentStart(c)) {
      std::size_t start = at_;
      while (at_ < text_.size() && isIdentChar(text_[at_])) ++at_;
      std::string name(text_.substr(start, at_ - start));
      std::size_t after = at_;
      skipSpace();
      if (isFunction(name) && at_ < text_.size() && text_[at_] == '(') {
        std::size_t close = text_.find(')', at_);
        if (close == std::string_view::npos) return std::unexpected("missing ')' after " + name + "(");
        std::string argument(text_.substr(at_ + 1, close - at_ - 1));
        while (!argument.empty() && std::isspace(static_cast<unsigned char>(argument.back()))) argument.pop_back();
        while (!argument.empty() && std::isspace(static_cast<unsigned char>(argument.front()))) argument.erase(0, 1);
        at_ = close + 1;
        return add({Op::Call, 0, name, argument, -1, -1, -1, {}, {}});
      }
      at_ = after;
      return add({Op::Name, 0, name, {}, -1, -1, -1, {}, {}});
    }
    return std::unexpected("unexpected '" + std::string(1, c) + "'");
  }

  std::string_view text_;
  std::size_t at_ = 0;
  MetaExpression& out_;
};

std::expected<MetaExpression, std::string> MetaExpression::parse(std::string_view text) {
  MetaExpression expression;
  MetaParser parser(text, expression);
  if (auto parsed = parser.run(); !parsed) return std::unexpected(parsed.error());
  return expression;
}

std::vector<std::string> MetaExpression::names() const {
  std::vector<std::string> result;
  std::set<std::string_view> seen;
  // Nodes are added children first; walk them in the order written instead.
  std::function<void(int)> walk = [&](int node) {
    if (node < 0) return;
    const Node& n = nodes_[static_cast<std::size_t>(node)];
    if (n.op == Op::Name && seen.insert(n.text).second) result.push_back(n.text);
    walk(n.a);
    walk(n.b);
    walk(n.c);
  };
  walk(root_);
  return result;
}

std::vector<MetaExpression::Call> MetaExpression::calls() const {
  std::vector<Call> result;
  for (const Node& node : nodes_)
    if (node.op == Op::Call) result.push_back({node.text, node.argument});
  return result;
}

void MetaExpression::bind(const std::function<std::optional<std::size_t>(std::string_view)>& slot_of,
                          const std::function<std::vector<std::size_t>(std::string_view)>& expand) {
  for (Node& node : nodes_) {
    if (node.op == Op::Name) node.slot = slot_of(node.text);
    if (node.op == Op::Call && node.text == "rules_matching") node.sum = expand(node.argument);
  }
}

std::vector<std::size_t> MetaExpression::slots() const {
  std::set<std::size_t> seen;
  for (const Node& node : nodes_) {
    if (node.slot) seen.insert(*node.slot);
    for (std::size_t slot : node.sum) seen.insert(slot);
  }
  return {seen.begin(), seen.end()};
}

double MetaExpression::run(int index, std::span<const double> values) const {
  const Node& node = nodes_[static_cast<std::size_t>(index)];
  switch (node.op) {
    case Op::Number: return node.number;
    case Op::Name: return node.slot ? values[*node.slot] : 0;
    case Op::Call: {
      double total = 0;
      for (std::size_t slot : node.sum) total += values[slot];
      return total;
    }
    case Op::Not: return truthy(run(node.a, values)) ? 0 : 1;
    case Op::Negate: return -run(node.a, values);
    case Op::And: {
      double left = run(node.a, values);
      return truthy(left) ? run(node.b, values) : left;
    }
    case Op::Or: {
      double left = run(node.a, values);
      return truthy(left) ? left : run(node.b, values);
    }
    case Op::Ternary: return truthy(run(node.a, values)) ? run(node.b, values) : run(node.c, values);
    default: return apply(node.op, run(node.a, values), run(node.b, values));
  }
}

double MetaExpression::apply(Op op, double a, double b) {
  switch (op) {
    case Op::Mul: return a * b;
    case Op::Div: return b == 0 ? 0 : a / b;  // Perl dies on /0 and the meta does not hit
    case Op::Add: return a + b;
    case Op::Sub: return a - b;
    case Op::Lt: return a < b ? 1 : 0;
    case Op::Le: return a <= b ? 1 : 0;
    case Op::Gt: return a > b ? 1 : 0;
    case Op::Ge: return a >= b ? 1 : 0;
    case Op::Eq: return a == b ? 1 : 0;
    case Op::Ne: return a != b ? 1 : 0;
    // Perl's ^ on numbers works on unsigned integers.
    case Op::Xor: return static_cast<double>(static_cast<uint64_t>(std::fabs(a)) ^ static_cast<uint64_t>(std::fabs(b)));
    default: return 0;
  }
}

double MetaExpression::evaluate(std::span<const double> values) const { return root_ < 0 ? 0 : run(root_, values); }

template <class Leaf>
std::optional<double> MetaExpression::partial(int index, const Leaf& leaf) const {
  const Node& node = nodes_[static_cast<std::size_t>(index)];
  switch (node.op) {
    case Op::Number: return node.number;
    case Op::Name:
    case Op::Call: return leaf(node);
    case Op::Not: {
      auto value = partial(node.a, leaf);
      if (!value) return std::nullopt;
      return truthy(*value) ? 0 : 1;
    }
    case Op::Negate: {
      auto value = partial(node.a, leaf);
      if (!value) return std::nullopt;
      return -*value;
    }
    case Op::And: {
      auto left = partial(node.a, leaf);
      if (left) return truthy(*left) ? partial(node.b, leaf) : left;
      // Unknown && false: a false left is 0 itself, so the result is 0 either way.
      auto right = partial(node.b, leaf);
      if (right && !truthy(*right)) return 0.0;
      return std::nullopt;
    }
    case Op::Or: {
      auto left = partial(node.a, leaf);
      if (left) return truthy(*left) ? left : partial(node.b, leaf);
      return std::nullopt;
    }
    case Op::Ternary: {
      auto condition = partial(node.a, leaf);
      if (!condition) return std::nullopt;
      return truthy(*condition) ? partial(node.b, leaf) : partial(node.c, leaf);
    }
    default: {
      auto left = partial(node.a, leaf);
      auto right = partial(node.b, leaf);
      if (node.op == Op::Mul && ((left && *left == 0) || (right && *right == 0))) return 0.0;
      if (!left || !right) return std::nullopt;
      return apply(node.op, *left, *right);
    }
  }
}

std::optional<double> MetaExpression::constantValue(std::span<const std::optional<double>> values) const {
  if (root_ < 0) return 0.0;
  return partial(root_, [&](const Node& node) -> std::optional<double> {
    if (node.op == Op::Name) return node.slot ? values[*node.slot] : std::optional<double>(0.0);
    double total = 0;
    for (std::size_t slot : node.sum) {
      if (!values[slot]) return std::nullopt;
      total += *values[slot];
    }
    return total;
  });
}

std::optional<double> MetaExpression::evaluate(const std::function<std::optional<double>(const std::string&)>& name,
                                               const std::function<std::optional<double>(const Call&)>& call) const {
  if (root_ < 0) return std::nullopt;
  return partial(root_, [&](const Node& node) -> std::optional<double> {
    if (node.op == Op::Name) return name(node.text);
    return call(Call{node.text, node.argument});
  });
}

}  // namespace mailgate::rules
