#include <map>
#include <string>

namespace store {

class Cache {
 public:
  std::string get(const std::string &key);
 private:
  std::map<std::string, std::string> map_;
};

std::string Cache::get(const std::string &key) {
  return map_.at(key);
}

}  // namespace store
