#pragma once
// The expression language of `meta` rules and `if` lines, as SpamAssassin evaluates them with
// Perl: numbers and names, unary ! and -, * /, + -, < <= > >=, == !=, ^, &&, ||, ?: with Perl's
// precedence, and Perl's values (&& and || give one of their operands, comparisons give 1 or 0).
// In a meta a name is a rule and reads as its hit count; rules_matching(GLOB) is the sum of the
// rules it names. In an `if` line, plugin(X), can(X) and has(X) are calls answered by the loader.

#include <cstddef>
#include <expected>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace mailgate::rules {

class MetaExpression {
 public:
  struct Call {
    std::string function;  // "plugin", "can", "has", "rules_matching"
    std::string argument;  // as written, trimmed
  };

  // Nesting deeper than this is refused: evaluation recurses once per level.
  static constexpr int max_depth = 200;

  static std::expected<MetaExpression, std::string> parse(std::string_view text);

  // The distinct names read, in order of first appearance (rules, or version/perl_version).
  std::vector<std::string> names() const;
  std::vector<Call> calls() const;

  // Gives each name the slot evaluate() reads it from (none: it reads as 0, as SpamAssassin reads
  // a rule that does not exist), and each rules_matching() the slots it sums.
  void bind(const std::function<std::optional<std::size_t>(std::string_view name)>& slot_of,
            const std::function<std::vector<std::size_t>(std::string_view glob)>& expand);
  // The slots read after bind(), each once.
  std::vector<std::size_t> slots() const;

  double evaluate(std::span<const double> values) const;
  // With some slots unknown (nullopt): the value when it is the same whatever they hold, else
  // nullopt. A meta whose value is 0 this way can never hit.
  std::optional<double> constantValue(std::span<const std::optional<double>> values) const;
  // For `if` lines: names and calls answered by the callbacks; nullopt when one cannot answer.
  std::optional<double> evaluate(const std::function<std::optional<double>(const std::string&)>& name,
                                 const std::function<std::optional<double>(const Call&)>& call) const;

 private:
  enum class Op { Number, Name, Call, Not, Negate, Mul, Div, Add, Sub, Lt, Le, Gt, Ge, Eq, Ne, Xor, And, Or, Ternary };
  struct Node {
    Op op = Op::Number;
    double number = 0;
    std::string text;      // Name: the name; Call: the function
    std::string argument;  // Call
    int a = -1, b = -1, c = -1;
    std::optional<std::size_t> slot;  // Name, after bind()
    std::vector<std::size_t> sum;     // Call rules_matching, after bind()
  };
  friend class MetaParser;

  static double apply(Op op, double a, double b);
  double run(int node, std::span<const double> values) const;
  template <class Leaf>
  std::optional<double> partial(int node, const Leaf& leaf) const;

  std::vector<Node> nodes_;
  int root_ = -1;
};

}  // namespace mailgate::rules
