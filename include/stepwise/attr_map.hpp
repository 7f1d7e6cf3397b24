#pragma once
// The attributes of a schema object: a map from name to text, kept as a small sorted vector
// whose keys are interned (one shared copy of "sql_name", "definition" ... for the whole
// process). A description of 10,000 tables holds some 500,000 attributes twice (expected and
// live): as std::map nodes they were most of validate's memory.
//
// The interface is std::map<std::string, std::string>'s where it is used: find, count,
// contains, at, operator[], emplace, try_emplace, insert_or_assign, erase, iteration in key
// order (yielding pair-like (key, value) references: `for (const auto& [k, v] : attrs)`), ==.
// Iterators are proxies: `*it` is a std::pair of references made on the fly, so bind it with
// `const auto&` or `auto` (not `auto&`). Insertion and erasure invalidate iterators.
#include <algorithm>
#include <cstddef>
#include <initializer_list>
#include <iterator>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace stepwise {

// The one copy of `key` (thread-safe; never freed before exit).
[[nodiscard]] const std::string* intern_attr_key(std::string_view key);

class AttrMap {
  struct Slot {
    const std::string* key;
    std::string value;
    bool operator==(const Slot& o) const {
      return (key == o.key || *key == *o.key) && value == o.value;
    }
  };
  using Slots = std::vector<Slot>;

  template <bool Const>
  class basic_iterator {
    using Base =
        std::conditional_t<Const, typename Slots::const_iterator, typename Slots::iterator>;
    using Value = std::conditional_t<Const, const std::string&, std::string&>;

   public:
    using value_type = std::pair<std::string, std::string>;
    using reference = std::pair<const std::string&, Value>;
    using difference_type = std::ptrdiff_t;
    using iterator_category = std::forward_iterator_tag;
    struct pointer {
      reference ref;
      const reference* operator->() const { return &ref; }
    };

    basic_iterator() = default;
    explicit basic_iterator(Base it) : it_(it) {}
    // iterator -> const_iterator
    template <bool C = Const, typename = std::enable_if_t<C>>
    basic_iterator(const basic_iterator<false>& o) : it_(o.base()) {}  // NOLINT

    reference operator*() const { return {*it_->key, it_->value}; }
    pointer operator->() const { return {**this}; }
    basic_iterator& operator++() {
      ++it_;
      return *this;
    }
    basic_iterator operator++(int) {
      auto old = *this;
      ++it_;
      return old;
    }
    template <bool C>
    bool operator==(const basic_iterator<C>& o) const {
      return base_const() == o.base_const();
    }
    [[nodiscard]] Base base() const { return it_; }
    [[nodiscard]] typename Slots::const_iterator base_const() const { return it_; }

   private:
    Base it_{};
  };

 public:
  using key_type = std::string;
  using mapped_type = std::string;
  using value_type = std::pair<std::string, std::string>;
  using size_type = std::size_t;
  using iterator = basic_iterator<false>;
  using const_iterator = basic_iterator<true>;

  AttrMap() = default;
  AttrMap(std::initializer_list<std::pair<std::string, std::string>> items) {
    for (const auto& [k, v] : items) insert_or_assign(k, v);
  }
  AttrMap(const std::map<std::string, std::string>& m) {  // NOLINT: as convenient as the map
    slots_.reserve(m.size());
    for (const auto& [k, v] : m) slots_.push_back({intern_attr_key(k), v});
  }
  template <typename It>
  AttrMap(It first, It last) {
    for (; first != last; ++first) insert_or_assign((*first).first, (*first).second);
  }

  [[nodiscard]] iterator begin() { return iterator(slots_.begin()); }
  [[nodiscard]] iterator end() { return iterator(slots_.end()); }
  [[nodiscard]] const_iterator begin() const { return const_iterator(slots_.begin()); }
  [[nodiscard]] const_iterator end() const { return const_iterator(slots_.end()); }
  [[nodiscard]] const_iterator cbegin() const { return begin(); }
  [[nodiscard]] const_iterator cend() const { return end(); }
  [[nodiscard]] size_type size() const { return slots_.size(); }
  [[nodiscard]] bool empty() const { return slots_.empty(); }
  void clear() { slots_.clear(); }

  [[nodiscard]] iterator find(std::string_view key) {
    const auto it = lower(key);
    return iterator(it != slots_.end() && *it->key == key ? it : slots_.end());
  }
  [[nodiscard]] const_iterator find(std::string_view key) const {
    return const_iterator(const_cast<AttrMap*>(this)->find(key).base());
  }
  [[nodiscard]] size_type count(std::string_view key) const { return contains(key) ? 1 : 0; }
  [[nodiscard]] bool contains(std::string_view key) const { return find(key) != end(); }
  [[nodiscard]] const std::string& at(std::string_view key) const {
    const auto it = find(key);
    if (it == end()) throw std::out_of_range("AttrMap::at: no attribute " + std::string(key));
    return it.base()->value;
  }
  [[nodiscard]] std::string& at(std::string_view key) {
    const auto it = find(key);
    if (it == end()) throw std::out_of_range("AttrMap::at: no attribute " + std::string(key));
    return it.base()->value;
  }
  std::string& operator[](std::string_view key) { return try_emplace(key).first.base()->value; }

  template <typename... Args>
  std::pair<iterator, bool> try_emplace(std::string_view key, Args&&... args) {
    auto it = lower(key);
    if (it != slots_.end() && *it->key == key) return {iterator(it), false};
    it = slots_.insert(it, Slot{intern_attr_key(key), std::string(std::forward<Args>(args)...)});
    return {iterator(it), true};
  }
  template <typename V>
  std::pair<iterator, bool> emplace(std::string_view key, V&& value) {
    return try_emplace(key, std::forward<V>(value));
  }
  std::pair<iterator, bool> insert(const std::pair<std::string, std::string>& kv) {
    return try_emplace(kv.first, kv.second);
  }
  template <typename V>
  std::pair<iterator, bool> insert_or_assign(std::string_view key, V&& value) {
    auto r = try_emplace(key);
    r.first.base()->value = std::forward<V>(value);
    return r;
  }

  size_type erase(std::string_view key) {
    const auto it = find(key);
    if (it == end()) return 0;
    slots_.erase(it.base());
    return 1;
  }
  iterator erase(const_iterator pos) { return iterator(slots_.erase(pos.base_const())); }
  iterator erase(iterator pos) { return erase(const_iterator(pos)); }
  // Removes the entries for which pred((key, value)) holds; returns how many.
  template <typename Pred>
  size_type erase_if(Pred pred) {
    const auto n = slots_.size();
    std::erase_if(slots_, [&](const Slot& s) {
      return pred(std::pair<const std::string&, const std::string&>(*s.key, s.value));
    });
    return n - slots_.size();
  }

  // Bulk building (parsers): entries appended in any order, then sorted once by finish()
  // (a later entry for the same key wins, as with repeated operator[] assignments).
  void reserve(size_type n) { slots_.reserve(n); }
  void append_unsorted(std::string_view key, std::string value) {
    slots_.push_back({intern_attr_key(key), std::move(value)});
  }
  // The same with a key from intern_attr_key (a reader interning its keys once).
  void append_unsorted(const std::string* interned_key, std::string value) {
    slots_.push_back({interned_key, std::move(value)});
  }
  void finish() {
    std::stable_sort(slots_.begin(), slots_.end(),
                     [](const Slot& a, const Slot& b) { return *a.key < *b.key; });
    // Keep the last of equal keys.
    std::size_t out = 0;
    for (std::size_t i = 0; i < slots_.size(); ++i) {
      if (i + 1 < slots_.size() && *slots_[i + 1].key == *slots_[i].key) continue;
      if (out != i) slots_[out] = std::move(slots_[i]);
      ++out;
    }
    slots_.resize(out);
    if (slots_.capacity() > slots_.size()) slots_.shrink_to_fit();
  }

  bool operator==(const AttrMap& o) const = default;
  // Ordered as std::map's (lexicographic over (key, value) pairs).
  bool operator<(const AttrMap& o) const {
    return std::lexicographical_compare(slots_.begin(), slots_.end(), o.slots_.begin(),
                                        o.slots_.end(), [](const Slot& a, const Slot& b) {
                                          if (*a.key != *b.key) return *a.key < *b.key;
                                          return a.value < b.value;
                                        });
  }

  [[nodiscard]] std::map<std::string, std::string> to_map() const {
    std::map<std::string, std::string> m;
    for (const auto& s : slots_) m.emplace_hint(m.end(), *s.key, s.value);
    return m;
  }

 private:
  typename Slots::iterator lower(std::string_view key) {
    return std::lower_bound(slots_.begin(), slots_.end(), key,
                            [](const Slot& s, std::string_view k) { return *s.key < k; });
  }

  Slots slots_;
};

}  // namespace stepwise
